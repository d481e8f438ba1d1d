"""Stage 12 helper: split a set into decoding jobs, or merge the jobs' n-best outputs.

    python -m espnet_lrsms.bin.decode_jobs split --scp data/test/wav.scp --nj 4 --logdir D/logdir   # keys.<j>.scp
    python -m espnet_lrsms.bin.decode_jobs merge --logdir D/logdir --nj 4 --out_dir D
"""
import argparse
import sys
from pathlib import Path

from espnet_lrsms.recipe.decode_jobs import DecodeJobsError, merge_outputs, split_keys


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["split", "merge"])
    parser.add_argument("--logdir", type=Path, required=True)
    parser.add_argument("--nj", type=int, required=True)
    parser.add_argument("--scp", type=Path, help="split: the set's wav.scp")
    parser.add_argument("--out_dir", type=Path, help="merge: the decode directory")
    args = parser.parse_args(cmd)
    try:
        if args.action == "split":
            if args.scp is None:
                parser.error("split needs --scp")
            split_keys(args.scp, args.nj, args.logdir)
        else:
            if args.out_dir is None:
                parser.error("merge needs --out_dir")
            merge_outputs(args.logdir, args.nj, args.out_dir)
    except DecodeJobsError as error:
        print(f"decode_jobs {args.action}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
