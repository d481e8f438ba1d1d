"""Noise for training in noise (ESPnet's ``--noise_scp``): babble made from training utterances, or a recording.

    python -m espnet_lrsms.bin.avsr_make_noise_scp --out_dir data/train_babble --babble_scp data/train/wav.scp \\
        [--num_files 20 --seconds 10 --babble_speakers 6 --seed 0]
    python -m espnet_lrsms.bin.avsr_make_noise_scp --out_dir data/train_noise --noise noisex_babble.wav

Writes ``<out_dir>/noise.scp`` (``<id> <wav path>`` lines), which ESPnet's training takes as
``--noise_scp``: its preprocessor then adds a random entry, from a random start, to each training
utterance with probability ``--noise_apply_prob`` at an SNR drawn uniformly from ``--noise_db_range``
(e.g. ``-5_20``). The paper trains its AVSR models in NOISEX babble (Table III's caption).

- ``--noise FILE``: the scp lists that recording (mono, 16 kHz, checked).
- otherwise babble: ``--num_files`` files of ``--seconds`` each, every one the sum of
  ``--babble_speakers`` utterances drawn from ``--babble_scp`` at equal loudness
  (:func:`espnet_lrsms.avsr.noise.make_babble`), scaled to a peak of 0.9, as 16-bit wav files in
  ``<out_dir>/wav/``. Draw the talkers from the training set, never the test set.

The scp is written to a temporary name and renamed; the settings are kept in ``<out_dir>/noise.json``
and a re-run with the same settings does nothing.
"""
import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile
from espnet2.fileio.sound_scp import SoundScpReader

from espnet_lrsms.avsr.noise import make_babble
from espnet_lrsms.fileio import write_text_atomic

FS = 16000


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--noise", type=Path, help="a noise recording (mono, 16 kHz), e.g. NOISEX babble")
    parser.add_argument("--babble_scp", type=Path, help="wav.scp whose utterances are summed into babble")
    parser.add_argument("--num_files", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--babble_speakers", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _recording_scp(noise: Path) -> str:
    if not noise.is_file():
        raise ValueError(f"--noise {noise}: no such file")
    info = soundfile.info(str(noise))
    if info.samplerate != FS or info.channels != 1:
        raise ValueError(f"--noise {noise}: expected mono {FS} Hz audio, got {info.channels} channel(s) at {info.samplerate} Hz")
    return f"noise {noise.resolve()}\n"


def _babble_scp(args: argparse.Namespace, wav_dir: Path) -> str:
    if args.babble_scp is None or not args.babble_scp.is_file():
        raise ValueError(f"--babble_scp {args.babble_scp}: no such wav.scp (or give --noise)")
    if args.num_files < 1 or args.seconds <= 0 or args.babble_speakers < 1:
        raise ValueError("--num_files, --seconds and --babble_speakers must be positive")
    reader = SoundScpReader(str(args.babble_scp), dtype=np.float64)
    keys = list(reader.keys())
    if len(keys) < args.babble_speakers:
        raise ValueError(f"{args.babble_scp}: {len(keys)} utterances, fewer than --babble_speakers {args.babble_speakers}")
    rng = np.random.default_rng(args.seed)
    length = int(args.seconds * FS)
    lines = []
    wav_dir.mkdir(parents=True, exist_ok=True)
    for index in range(args.num_files):
        talkers = []
        for key in rng.choice(keys, size=args.babble_speakers, replace=False):
            rate, wave = reader[key]
            if rate != FS:
                raise ValueError(f"{args.babble_scp}: utterance {key} is at {rate} Hz, expected {FS}")
            talkers.append(wave if wave.ndim == 1 else wave.mean(axis=1))
        babble = make_babble(talkers, length, rng)
        babble *= 0.9 / np.abs(babble).max()
        path = wav_dir / f"babble_{index:03d}.wav"
        soundfile.write(str(path), babble, FS, subtype="PCM_16")
        lines.append(f"babble_{index:03d} {path.resolve()}\n")
    return "".join(lines)


def main(cmd=None) -> int:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    settings = {k: str(v) for k, v in sorted(vars(args).items()) if k != "out_dir"}
    marker, scp = args.out_dir / "noise.json", args.out_dir / "noise.scp"
    if scp.is_file() and marker.is_file() and json.loads(marker.read_text()) == settings:
        logging.info("%s is up to date", scp)
        return 0
    try:
        if args.noise is not None:
            text = _recording_scp(args.noise)
        else:
            if (args.out_dir / "wav").exists():
                shutil.rmtree(args.out_dir / "wav")
            text = _babble_scp(args, args.out_dir / "wav")
    except ValueError as err:
        logging.error("%s", err)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(scp, text)
    marker.write_text(json.dumps(settings), encoding="utf-8")
    logging.info("%s: %d noise file(s)", scp, len(text.splitlines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
