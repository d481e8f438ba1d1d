"""LM training and LoRA adaptation: ``espnet2.bin.lm_train`` with ``--lora_conf`` and ``--base_lm_file``.

Takes every argument ESPnet's own ``python -m espnet2.bin.lm_train`` takes; see
:mod:`espnet_lrsms.lm.task` for the two added ones.
"""
from espnet_lrsms.lm.task import LoRALMTask


def get_parser():
    return LoRALMTask.get_parser()


def main(cmd=None):
    LoRALMTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
