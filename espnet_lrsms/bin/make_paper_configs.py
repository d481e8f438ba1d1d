"""Write the paper's training configs and their manifests (espnet_lrsms.recipe.paper_configs), or an
editable copy of one.

    python -m espnet_lrsms.bin.make_paper_configs [--conf_dir conf]
    python -m espnet_lrsms.bin.make_paper_configs --copy asr/lrsms --out conf/tuning/my_asr.yaml

Writes <conf_dir>/asr/train_asr_conformer_*.yaml (LR-SMS Tables I and II, Fig. 4),
<conf_dir>/avsr/train_avsr_conformer_*.yaml (Table III) and <conf_dir>/{asr,avsr}/paper_rows.tsv.
The committed files are this command's output: change espnet_lrsms/recipe/paper_configs.py, run this
from the repository root, and commit what changed.

--copy ROW --out FILE writes FILE only: the config of a paper row (asr/lrsms, avsr/full_rank, a stem only
one task has such as uniform_ffn_a0.25, or a generated file's name or path; any other YAML file is copied as
it is) without the "never edit" line, under a header naming where it came from: yours to edit. An
existing FILE is never overwritten.
"""
import argparse
import sys
from pathlib import Path

from espnet_lrsms.recipe.paper_configs import PaperConfigError, copy_paper_config, write_paper_configs


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conf_dir", type=Path, default=Path("conf"), help="the recipe's conf/ (default: ./conf)")
    parser.add_argument("--copy", metavar="ROW_OR_YAML", help="write an editable copy of this paper row or YAML file")
    parser.add_argument("--out", type=Path, help="with --copy: the file to write (never overwritten)")
    args = parser.parse_args(cmd)
    if args.copy is None:
        if args.out is not None:
            parser.error("--out goes with --copy")
        paths = write_paper_configs(args.conf_dir)
        print(f"wrote {len(paths)} files under {args.conf_dir}")
        return 0
    if args.out is None:
        parser.error("--copy needs --out FILE")
    try:
        copy_paper_config(args.copy, args.out)
    except PaperConfigError as error:
        print(f"make_paper_configs: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}, a copy of {args.copy}: yours to edit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
