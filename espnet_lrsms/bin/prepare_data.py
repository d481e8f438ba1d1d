"""Stage 1: a corpus → data/<set>/{wav.scp,text,utt2spk,spk2utt} (+ video.scp with lrs3 --task avsr). One
subcommand per corpus, each run by that corpus' recipe (egs2/<corpus>/asr1/local/data.sh; the AVSR template's stage 1):

    python -m espnet_lrsms.bin.prepare_data librispeech --corpus_root $LIBRISPEECH \\
        --sets train_clean_100 dev_clean test_clean --filter_sets train_clean_100 dev_clean [--nj 8] [--on_error skip]
    python -m espnet_lrsms.bin.prepare_data lrs3 --task avsr --corpus_root $LRS3 --sets train dev test \\
        --filter_sets train dev [--landmarks_dir $LRS3_LANDMARKS] [--valid_speakers dev_speakers.txt]

--task asr (default): audio and text (espnet_lrsms.recipe.prepare_data). lrs3 --task avsr: audio and 96x96
mouth ROIs per clip (espnet_lrsms.recipe.avsr_data_prep).
--filter_sets: the sets ESPnet's duration filter applies to (its asr.sh stage 4 filters the training and
validation sets, never test sets): utterances not longer than --min_wav_duration or not shorter than
--max_wav_duration are left out and listed in data/<set>/filtered.txt.
LRS3's dev (the old name val works too) is ESPnet's speaker-disjoint one: the trainval clips of 8 % of its
speakers; train = pretrain + trainval less those speakers' clips. The speakers come from --valid_speakers
(one id per line, first column: a plain list or an spk2utt), else from <data_dir>/lrs3_dev_speakers.txt left
by an earlier run, else ESPnet's egs2/lrs3/asr1 rule; they are written to <data_dir>/lrs3_dev_speakers.txt.
Bad input (see README, "bad input"): --on_error stop fails naming it, skip leaves it out (data/<set>/skipped.txt).

AVSR ROI options (lrs3 --task avsr only):
--roi_method auto (default): landmarks when --landmarks_dir is given, else detect.
--roi_method landmarks: per clip <landmarks_dir>/<split>/<speaker>/<clip>.pkl (list of (68, 2) arrays
or None per frame, as Auto-AVSR's released LRS3 landmarks) or .npy ((T, 68, 2), NaN = no face).
--roi_method detect: dlib's face detector and 68-point shape predictor (models inside the dlib-bin and
face_recognition_models wheels; nothing downloaded) find the landmarks, kept in
<data_dir>/av/<set>/landmarks/<split>/<speaker>/<clip>.npy.
--roi_method as_is: the videos already show the mouth; frames are only resized to --roi_size.
"""
import argparse
import logging
import sys
from pathlib import Path

from espnet_lrsms.recipe.data_prep import DataPrepError
from espnet_lrsms.recipe.duration_filter import DurationFilter
from espnet_lrsms.recipe.prepare_data import TASKS, prepare_librispeech, prepare_lrs3
from espnet_lrsms.recipe.roi_settings import ROI_METHODS, RoiSettings

AVSR_DEFAULTS = {
    "roi_method": "auto", "landmarks_dir": None, "detect_upsample": 0, "detect_fallback": 1, "roi_size": 96, "crop_scale": 2.0,
    "smooth_window": 12, "max_frame_mismatch": 3,
}


def _common_options(parser: argparse.ArgumentParser, root_help: str, sets_help: str) -> None:
    parser.add_argument("--corpus_root", type=Path, required=True, help=root_help)
    parser.add_argument("--sets", nargs="+", required=True, help=sets_help)
    parser.add_argument("--data_dir", type=Path, default=Path("data"))
    parser.add_argument("--nj", type=int, default=4)
    parser.add_argument("--on_error", choices=["stop", "skip"], default="stop")
    parser.add_argument("--filter_sets", nargs="*", default=[],
                        help="sets of --sets the duration filter applies to (training and validation sets)")
    parser.add_argument("--min_wav_duration", type=float, default=0.1, help="seconds; ESPnet's default")
    parser.add_argument("--max_wav_duration", type=float, default=20.0, help="seconds; ESPnet's default")


def _librispeech(args) -> None:
    prepare_librispeech(args.corpus_root, args.sets, args.data_dir, args.nj, args.on_error, args.filter_sets,
                        DurationFilter(args.min_wav_duration, args.max_wav_duration))


def _lrs3(args) -> None:
    given = [name for name in AVSR_DEFAULTS if getattr(args, name) is not None]
    if args.task == "asr" and given:
        args.parser.error(f"--{given[0]} is an AVSR option: add --task avsr")
    avsr = {name: AVSR_DEFAULTS[name] if getattr(args, name) is None else getattr(args, name) for name in AVSR_DEFAULTS}
    roi = None
    if args.task == "avsr":
        roi = RoiSettings(
            method=avsr["roi_method"],
            landmarks_dir=str(Path(avsr["landmarks_dir"]).resolve()) if avsr["landmarks_dir"] else None,
            size=avsr["roi_size"],
            crop_scale=avsr["crop_scale"],
            smooth_window=avsr["smooth_window"],
            detect_upsample=avsr["detect_upsample"],
            detect_fallback=avsr["detect_fallback"],
        )
    prepare_lrs3(
        args.task, args.corpus_root, args.sets, args.data_dir, args.nj, args.on_error, args.filter_sets,
        DurationFilter(args.min_wav_duration, args.max_wav_duration), roi, avsr["max_frame_mismatch"],
        args.valid_speakers, args.extra_train_sets, args.extra_into,
    )


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    corpora = parser.add_subparsers(dest="corpus", required=True, metavar="{librispeech,lrs3}",
                                    help="the corpus: its layout, set names and ids")
    libri = corpora.add_parser("librispeech", help="LibriSpeech (egs2/librispeech/asr1)")
    _common_options(libri, "the directory that holds LibriSpeech/",
                    "ESPnet set names, e.g. train_clean_100 dev_clean; train_960, dev: the combined subsets")
    libri.set_defaults(func=_librispeech, parser=libri)
    lrs3 = corpora.add_parser("lrs3", help="LRS3 (egs2/lrs3/asr1; --task avsr: egs2/lrs3/avsr1_lrsms)")
    _common_options(lrs3, "the directory that holds pretrain/, trainval/, test/",
                    "train dev test (ESPnet's), or the splits pretrain trainval test")
    lrs3.add_argument("--task", choices=TASKS, default="asr", help="asr: audio only; avsr: audio and mouth ROIs")
    lrs3.add_argument("--valid_speakers", type=Path, default=None,
                      help="file of dev speaker ids (first column; e.g. ESPnet's data/dev/spk2utt)")
    lrs3.set_defaults(func=_lrs3, parser=lrs3)
    avsr = lrs3.add_argument_group("AVSR (--task avsr)")
    avsr.add_argument("--extra_train_sets", nargs="*", type=Path, default=[],
                      help="directories of mp4 clips with a transcript each (<clip>.txt) or a Kaldi text file "
                           "(<dir>/text), prepared like LRS3 (any frame rate, brought to 25 fps) and merged into --extra_into")
    avsr.add_argument("--extra_into", default="train", help="the set of --sets the extra corpora join (default train)")
    avsr.add_argument("--roi_method", choices=ROI_METHODS, default=None,
                      help=f"default {AVSR_DEFAULTS['roi_method']}")
    avsr.add_argument("--landmarks_dir", type=str, default=None)
    avsr.add_argument("--detect_upsample", type=int, default=None,
                      help="detect: times each frame is upsampled before face detection (default 0: face boxes >= ~60 px)")
    avsr.add_argument("--detect_fallback", type=int, default=None,
                      help="detect: further upsampling steps tried on frames without a face (default 1; 0: none)")
    avsr.add_argument("--roi_size", type=int, default=None, help="default 96")
    avsr.add_argument("--crop_scale", type=float, default=None, help="crop side / median mouth width (default 2.0)")
    avsr.add_argument("--smooth_window", type=int, default=None, help="frames the mouth centre is averaged over (default 12)")
    avsr.add_argument("--max_frame_mismatch", type=int, default=None,
                      help="audio/video difference allowed, 40 ms frames (default 3)")
    return parser


def main(cmd=None) -> int:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    try:
        args.func(args)
    except DataPrepError as err:
        logging.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
