"""Stage 15 (ESPnet's upload stage): a Hugging Face model repository from a packed model, uploaded only with --push.

    python -m espnet_lrsms.bin.hf_model_repo --pack exp/asr_x/asr_x_valid.acc.ave.zip \\
        --out_dir exp/asr_x/hf_repo --corpus librispeech [--hf_repo user/lrsms-librispeech --push]
    python -m espnet_lrsms.bin.hf_model_repo --repo_dir exp/asr_x/hf_repo --hf_repo user/lrsms-librispeech --push
"""
import argparse
import logging
import sys
from pathlib import Path

from espnet_lrsms.recipe.hf_model_repo import ModelRepoError, push_model_repo, write_model_repo


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", type=Path, help="stage 14's zip")
    parser.add_argument("--out_dir", type=Path, help="the repository directory to write from --pack")
    parser.add_argument("--repo_dir", type=Path, help="a repository directory written before, to upload")
    parser.add_argument("--hf_repo", default="", help="<user or org>/<name> on the hub")
    parser.add_argument("--corpus", default="librispeech")
    parser.add_argument("--lang", default="en")
    parser.add_argument("--task", default="asr", choices=["asr", "avsr"])
    parser.add_argument("--push", action="store_true", help="upload --out_dir (or --repo_dir) to --hf_repo")
    parser.add_argument("--private", action="store_true")
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    try:
        if args.push and (not args.hf_repo or (args.repo_dir is None and args.pack is None)):
            parser.error("--push needs --hf_repo and --repo_dir (or --pack and --out_dir)")
        if args.pack is None and not args.push:
            parser.error("give --pack and --out_dir, and --push with --hf_repo to upload; or --push with --repo_dir and --hf_repo")
        repo_dir = args.repo_dir
        if args.pack is not None:
            if args.out_dir is None:
                parser.error("--pack needs --out_dir")
            if not args.pack.is_file():
                parser.error(f"--pack {args.pack}: no such file (run the packing stage, 14, with --skip_packing false)")
            repo_dir = write_model_repo(args.pack, args.out_dir, args.hf_repo or args.out_dir.name, args.corpus,
                                        args.lang, args.task)
        if args.push:
            print(push_model_repo(repo_dir, args.hf_repo, args.private))
    except ModelRepoError as error:
        logging.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
