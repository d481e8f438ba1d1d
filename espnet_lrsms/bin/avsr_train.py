"""AVSR training: ESPnet's trainer on :class:`espnet_lrsms.avsr.task.AVSRTask`.

Takes every argument ``espnet_lrsms.bin.asr_train`` takes, plus ``--video_frontend(_conf)`` and
``--fusion(_conf)``; the training data needs ``speech``, ``video`` and ``text``::

    python -m espnet_lrsms.bin.avsr_train --config conf/avsr/train_avsr_conformer_lrsms.yaml \\
        --train_data_path_and_name_and_type data/train/wav.scp,speech,sound \\
        --train_data_path_and_name_and_type data/train/video.scp,video,video_npy \\
        --train_data_path_and_name_and_type data/train/text,text,text ...
"""
from espnet_lrsms.avsr.task import AVSRTask


def get_parser():
    return AVSRTask.get_parser()


def main(cmd=None):
    AVSRTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
