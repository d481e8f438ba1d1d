"""AVSR decoding: joint CTC/attention beam search (ESPnet's ``BeamSearch``) on audio, video or both.

    python -m espnet_lrsms.bin.avsr_inference --asr_train_config exp/x/config.yaml \\
        --asr_model_file exp/x/valid.acc.ave.pth --output_dir exp/x/decode/test \\
        --data_path_and_name_and_type data/test/wav.scp,speech,sound \\
        --data_path_and_name_and_type data/test/video.scp,video,video_npy \\
        [--modality av|audio|video] [--beam_size 40 --ctc_weight 0.1 --nbest 1]

Decodes as ``espnet_lrsms.bin.asr_inference`` does: ESPnet's ``inference()`` and ``Speech2Text`` (every
option of ``python -m espnet2.bin.asr_inference`` is taken), with the model built by ``AVSRTask`` and fed
both streams (:class:`espnet_lrsms.avsr.inference.AVSRSpeech2Text`). Output as ESPnet's:
``<output_dir>/<n>best_recog/{text,token,token_int,score}``, and ``score_components`` as the ASR command's.
``--modality audio`` or ``video`` decodes with the other stream missing (zero features, as modality dropout
in training); giving only one ``--data_path_and_name_and_type`` does the same.
"""
import logging
import sys

from espnet_lrsms.asr.input_audio import AudioInputError
from espnet_lrsms.avsr.inference import get_parser, inference


def main(cmd=None) -> int:
    args = vars(get_parser(__doc__).parse_args(cmd))
    logging.basicConfig(level=args.pop("log_level"), format="%(asctime)s %(levelname)s: %(message)s")
    args.pop("config", None)
    try:
        inference(**args)
    except AudioInputError as error:  # named: the file, each utterance and its fault
        logging.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
