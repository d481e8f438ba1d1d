"""Make a noisy copy of an ESPnet data directory at a target SNR (paper Table III's test conditions).

    python -m espnet_lrsms.bin.mix_noise --data_dir data/test --output_dir data/test_babble_snr-7.5 \\
        --snr -7.5 [--noise noisex_babble.wav | --babble_speakers 6 [--babble_scp data/train/wav.scp]] [--seed 0]

Every utterance of ``<data_dir>/wav.scp`` gets noise added at ``--snr`` dB (speech power over noise
power over the whole utterance; :func:`espnet_lrsms.avsr.noise.mix_at_snr`):

- ``--noise FILE``: that recording (e.g. NOISEX babble), looped or cropped to the utterance's
  length from a random start;
- otherwise babble: the sum of ``--babble_speakers`` other utterances (from ``--babble_scp``, by
  default the data directory itself, never the utterance itself), each at equal loudness.

Random choices come from ``(--seed, utterance id)``, so a run is reproducible and independent of
order. The mixtures are written as 16-bit wav files under ``<output_dir>/wav/``; a mixture that would
clip is scaled down as a whole (the SNR is unchanged). Every other file of the data directory
(``text``, ``video.scp``, ``utt2spk``, …) is copied unchanged.
"""
import argparse
import logging
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np
import soundfile
from espnet2.fileio.sound_scp import SoundScpReader

from espnet_lrsms.avsr.noise import make_babble, mix_at_snr


def utterance_rng(seed: int, utt_id: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(utt_id.encode("utf-8"))])


def _mono(signal: np.ndarray, what: str) -> np.ndarray:
    if signal.ndim == 2 and signal.shape[1] == 1:
        signal = signal[:, 0]
    if signal.ndim != 1:
        raise ValueError(f"{what}: expected mono audio, got shape {signal.shape}")
    return signal.astype(np.float64)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True, help="ESPnet data directory with wav.scp")
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument("--snr", type=float, required=True, help="target SNR in dB")
    parser.add_argument("--noise", type=Path, help="noise recording (same sampling rate as the speech)")
    parser.add_argument("--babble_speakers", type=int, default=6, help="talkers summed into babble (no --noise)")
    parser.add_argument("--babble_scp", type=Path, help="wav.scp to draw babble talkers from (default: data_dir's)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(cmd=None) -> int:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    wav_scp = args.data_dir / "wav.scp"
    if not wav_scp.is_file():
        logging.error("%s: no such file", wav_scp)
        return 1
    if args.output_dir.resolve() == args.data_dir.resolve():
        logging.error("--output_dir must differ from --data_dir")
        return 1
    speech_reader = SoundScpReader(str(wav_scp), dtype="float64")
    noise = noise_rate = None
    babble_reader = babble_keys = None
    if args.noise is not None:
        if not args.noise.is_file():
            logging.error("--noise %s: no such file", args.noise)
            return 1
        noise, noise_rate = soundfile.read(str(args.noise), dtype="float64")
        noise = _mono(noise, str(args.noise))
    else:
        if args.babble_speakers < 1:
            logging.error("--babble_speakers must be >= 1, got %d", args.babble_speakers)
            return 1
        babble_scp = args.babble_scp or wav_scp
        babble_reader = SoundScpReader(str(babble_scp), dtype="float64")
        babble_keys = sorted(babble_reader.keys())
        if len(babble_keys) < args.babble_speakers + 1:
            logging.error(
                "%s has %d utterances: too few for %d babble talkers", babble_scp, len(babble_keys), args.babble_speakers
            )
            return 1

    wav_dir = args.output_dir / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    for item in args.data_dir.iterdir():
        if item.is_file() and item.name != "wav.scp":
            shutil.copy2(item, args.output_dir / item.name)
    lines = []
    for utt_id in speech_reader.keys():
        rate, speech = speech_reader[utt_id]
        speech = _mono(speech, f"{wav_scp}: {utt_id}")
        rng = utterance_rng(args.seed, utt_id)
        if noise is not None:
            if noise_rate != rate:
                logging.error("%s is at %d Hz but %s is at %d Hz", args.noise, noise_rate, utt_id, rate)
                return 1
            mixture = mix_at_snr(speech, noise, args.snr, rng=rng)
        else:
            talkers = [k for k in babble_keys if k != utt_id]
            chosen = rng.choice(len(talkers), size=args.babble_speakers, replace=False)
            sources = []
            for index in chosen:
                talker_rate, talker = babble_reader[talkers[index]]
                if talker_rate != rate:
                    logging.error("babble talker %s is at %d Hz but %s is at %d Hz", talkers[index], talker_rate, utt_id, rate)
                    return 1
                sources.append(_mono(talker, talkers[index]))
            mixture = mix_at_snr(speech, make_babble(sources, speech.size, rng), args.snr, offset=0)
        peak = np.max(np.abs(mixture))
        if peak >= 1.0:
            mixture = mixture * (0.99 / peak)
        path = wav_dir / f"{utt_id}.wav"
        soundfile.write(str(path), mixture, rate, subtype="PCM_16")
        lines.append(f"{utt_id} {path.resolve()}\n")
    (args.output_dir / "wav.scp").write_text("".join(lines), encoding="utf-8")
    logging.info("wrote %d utterances at %g dB SNR to %s", len(lines), args.snr, args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
