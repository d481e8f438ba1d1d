"""ASR training: ``espnet2.bin.asr_train`` with the low-rank classes registered.

Takes every argument ESPnet's own ``python -m espnet2.bin.asr_train`` takes.
"""
from espnet_lrsms.asr.task import LowRankASRTask


def get_parser():
    return LowRankASRTask.get_parser()


def main(cmd=None):
    LowRankASRTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
