"""AVSR stage 1: LRS3 mp4 → data/<set>/{wav.scp,video.scp,text,utt2spk,spk2utt} (espnet_lrsms.recipe.avsr_data_prep).

    python -m espnet_lrsms.bin.avsr_prepare_data --corpus_root $LRS3 --sets train val test \\
        --data_dir data --nj 8 [--landmarks_dir $LRS3_LANDMARKS] [--on_error skip]

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

from espnet_lrsms.recipe.avsr_data_prep import ROI_METHODS, RoiSettings, prepare_av_set
from espnet_lrsms.recipe.data_prep import DataPrepError


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus_root", type=Path, required=True, help="LRS3: holds pretrain/, trainval/, test/")
    parser.add_argument("--sets", nargs="+", required=True, help="pretrain trainval test train val")
    parser.add_argument("--data_dir", type=Path, default=Path("data"))
    parser.add_argument("--nj", type=int, default=4)
    parser.add_argument("--on_error", choices=["stop", "skip"], default="stop")
    parser.add_argument("--roi_method", choices=ROI_METHODS, default="auto")
    parser.add_argument("--landmarks_dir", type=str, default=None)
    parser.add_argument("--detect_upsample", type=int, default=0,
                        help="detect: times each frame is upsampled before face detection (0: faces >= ~80 px)")
    parser.add_argument("--roi_size", type=int, default=96)
    parser.add_argument("--crop_scale", type=float, default=2.0, help="crop side / median mouth width")
    parser.add_argument("--smooth_window", type=int, default=12, help="frames the mouth centre is averaged over")
    parser.add_argument("--max_frame_mismatch", type=int, default=3, help="audio/video difference allowed, 40 ms frames")
    return parser


def main(cmd=None) -> int:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    settings = RoiSettings(
        method=args.roi_method,
        landmarks_dir=str(Path(args.landmarks_dir).resolve()) if args.landmarks_dir else None,
        size=args.roi_size,
        crop_scale=args.crop_scale,
        smooth_window=args.smooth_window,
        detect_upsample=args.detect_upsample,
    )
    try:
        for set_name in dict.fromkeys(args.sets):
            prepare_av_set(args.corpus_root, set_name, args.data_dir, settings, args.nj, args.on_error, args.max_frame_mismatch)
    except DataPrepError as err:
        logging.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
