"""ESPnet's ``pack`` that also records, in the pack's ``meta.yaml``, that the model needs espnet_lrsms.

    python -m espnet_lrsms.bin.pack asr \\
        --asr_train_config exp/asr_<tag>/config.yaml \\
        --asr_model_file exp/asr_<tag>/valid.acc.ave.pth \\
        --option data/en_token_list/bpe_unigram5000/bpe.model --option exp/asr_<tag>/RESULTS.md \\
        --outpath exp/asr_<tag>/asr_<tag>_valid.acc.ave.zip

Takes ESPnet's ``espnet2.bin.pack`` options and writes its archive, whose ``meta.yaml`` gains
``espnet_lrsms: <version>``, ``requires: [espnet-lrsms==<version>]``, the components of this package
that the configs name, and how to load it (:mod:`espnet_lrsms.packing`). The archive is
written to a temporary name and renamed.
"""
import sys

from espnet2.bin.pack import get_parser

from espnet_lrsms.avsr.task import AVSRTask
from espnet_lrsms.packing import pack_model


def main(cmd=None) -> int:
    parser = get_parser()
    args = parser.parse_args(cmd)
    if not hasattr(args, "contents"):
        parser.print_help()
        parser.exit(2)
    yaml_files = {k: getattr(args, k) for k in args.contents.yaml_files if getattr(args, k) is not None}
    files = {k: getattr(args, k) for k in args.contents.files if getattr(args, k) is not None}
    # the AVSR task's choices hold the ASR task's too (video front end and fusion added)
    pack_model(yaml_files, files, args.outpath, AVSRTask.class_choices_list, option=args.option)
    return 0


if __name__ == "__main__":
    sys.exit(main())
