"""AVSR stages 12 (clean) and 17 (at SNRs): decode + score test sets clean and at SNRs, then <exp>/RESULTS.md (espnet_lrsms.recipe.avsr_snr_sweep).

    python -m espnet_lrsms.bin.avsr_snr_sweep --exp_dir exp/avsr_x --inference_tag decode_avsr_avsr_model_valid.acc.ave \\
        --asr_model_file exp/avsr_x/valid.acc.ave.pth --data_root data --test_sets test \\
        --conditions clean -7.5 -2.5 2.5 7.5 12.5 [--noise_file babble.wav | --babble_speakers 6] [--nj 4] \\
        [--bpemodel data/en_token_list/bpe_unigram5000/bpe.model] \\
        [any espnet_lrsms.bin.avsr_inference option: --config conf/avsr/decode_avsr.yaml --beam_size 40 --modality av ...]

Clean: <exp>/<inference_tag>/<set>; SNR x: noisy copy <data_root>/<set>_babble_snr<x> (mix_noise), decoded
into <exp>/<inference_tag>_snr<x>/<set>; each with <n>best_recog/ and score_{wer,cer}/result.txt (+ score_ter
with --bpemodel, as espnet_lrsms.bin.score).
--results_only: just rewrite <exp>/RESULTS.md from the result.txt files there.
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import Dict, List

from espnet_lrsms.recipe.avsr_snr_sweep import SweepError, run_sweep, write_results

# avsr_inference options this script sets itself for every job
_OWN = ("output_dir", "data_path_and_name_and_type", "key_file", "log_level", "config")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, required=True, help="the training output directory")
    parser.add_argument("--inference_tag", default="decode")
    parser.add_argument("--asr_train_config", type=Path, help="default: <exp_dir>/config.yaml")
    parser.add_argument("--asr_model_file", type=Path)
    parser.add_argument("--data_root", type=Path, default=Path("data"))
    parser.add_argument("--test_sets", nargs="+", default=[])
    parser.add_argument("--conditions", nargs="+", default=["clean"], help="'clean' and/or SNRs in dB")
    parser.add_argument("--noise_file", type=Path, help="noise recording (16 kHz); default: babble")
    parser.add_argument("--babble_speakers", type=int, default=6, help="utterances summed into babble")
    parser.add_argument("--seed", type=int, default=0, help="noise offsets and babble talkers")
    parser.add_argument("--nj", type=int, default=1, help="decoding jobs")
    parser.add_argument("--video_type", default="video_npy", choices=["video_npy", "video_mp4"])
    parser.add_argument("--bpemodel", type=Path,
                        help="SentencePiece model for scoring: token error rate (TER); decoding uses the model's own")
    parser.add_argument("--results_only", action="store_true")
    return parser


def decode_kwargs(asr_train_config: Path, asr_model_file: Path, extra: List[str]) -> Dict:
    """avsr_inference's options (its --config yaml and command-line overrides) as keyword arguments."""
    from espnet_lrsms.avsr.inference import get_parser as inference_parser

    required = ["--output_dir", "unused", "--data_path_and_name_and_type", "unused,speech,sound",
                "--asr_train_config", str(asr_train_config), "--asr_model_file", str(asr_model_file)]
    # data loading in the decoding job itself (--num_workers 0) unless asked otherwise
    kwargs = vars(inference_parser().parse_args(required + ["--num_workers", "0"] + extra))
    for name in _OWN:
        kwargs.pop(name, None)
    return kwargs


def main(cmd=None) -> int:
    args, extra = get_parser().parse_known_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    try:
        if not args.results_only:
            config = args.asr_train_config or args.exp_dir / "config.yaml"
            for path, option in ((config, "--asr_train_config"), (args.asr_model_file, "--asr_model_file")):
                if path is None or not Path(path).is_file():
                    raise SweepError(f"{option} {path}: no such file (train first: stage 11)")
            if not args.test_sets:
                raise SweepError("--test_sets: no test set given")
            kwargs = decode_kwargs(config, args.asr_model_file, extra)
            run_sweep(
                args.exp_dir, args.inference_tag, args.data_root, args.test_sets, args.conditions, kwargs,
                args.noise_file, args.babble_speakers, args.seed, args.nj, args.video_type, args.bpemodel,
            )
        elif extra:
            raise SweepError(f"--results_only takes no decoding options, got {extra}")
        print((write_results(args.exp_dir)).read_text(encoding="utf-8"))
    except SweepError as err:
        logging.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
