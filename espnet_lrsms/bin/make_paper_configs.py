"""Write the paper's training configs and their manifests (espnet_lrsms.recipe.paper_configs).

    python -m espnet_lrsms.bin.make_paper_configs [--conf_dir conf]

Writes <conf_dir>/asr/train_asr_conformer_*.yaml (LR-SMS Tables I and II, Fig. 4),
<conf_dir>/avsr/train_avsr_conformer_*.yaml (Table III) and <conf_dir>/{asr,avsr}/paper_rows.tsv.
The committed files are this command's output: change espnet_lrsms/recipe/paper_configs.py, run this
from the repository root, and commit what changed.
"""
import argparse
import sys
from pathlib import Path

from espnet_lrsms.recipe.paper_configs import write_paper_configs


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conf_dir", type=Path, default=Path("conf"), help="the recipe's conf/ (default: ./conf)")
    args = parser.parse_args(cmd)
    paths = write_paper_configs(args.conf_dir)
    print(f"wrote {len(paths)} files under {args.conf_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
