"""Make a noisy copy of an ESPnet data directory at a target SNR (paper Table III's test conditions).

    python -m espnet_lrsms.bin.avsr_mix_noise --data_dir data/test --output_dir data/test_babble_snr-7.5 \\
        --snr -7.5 [--noise noisex_babble.wav | --babble_speakers 6 [--babble_scp data/train/wav.scp]] [--seed 0]

Every utterance of ``<data_dir>/wav.scp`` gets noise added at ``--snr`` dB (ESPnet's training-noise SNR:
speech power over its non-silent samples, noise power over the segment added;
:func:`espnet_lrsms.avsr.noise.mix_at_snr`):

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
import sys
from pathlib import Path

from espnet_lrsms.avsr.noise import NoiseMixError, mix_noise_into_data_dir


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
    try:
        mix_noise_into_data_dir(
            args.data_dir, args.output_dir, args.snr, args.noise, args.babble_speakers, args.babble_scp, args.seed
        )
        return 0
    except NoiseMixError as err:
        logging.error("%s", err)
        return 1


if __name__ == "__main__":
    sys.exit(main())
