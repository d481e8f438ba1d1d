"""ASR decoding: ``espnet2.bin.asr_inference`` with the low-rank classes registered, writing the
per-scorer scores of every n-best hypothesis too.

Takes every argument ESPnet's own ``python -m espnet2.bin.asr_inference`` takes and writes what it
writes. ESPnet keeps only the total ``score`` of a hypothesis; this adds, next to it,
``<n>best_recog/score_components``: per utterance a JSON object
``{"scores": {"decoder": …, "ctc": …, "length_bonus": …}, "weights": {"decoder": 0.7, …}}`` with
``score = Σ weights[k]·scores[k]`` (the beam search's own scorers and weights), which N-best
rescoring (:mod:`espnet_lrsms.lm.rescore`) can recombine.

How: one loop over ESPnet's ``Speech2Text`` that writes ESPnet's decode layout itself
(:func:`espnet_lrsms.asr.inference.decode_data_dir`, which the AVSR command decodes through too).
Multi-speaker and enhancement models (``--enh_s2t_task``, ``--multi_asr``) are ESPnet's own: decode them
with ``python -m espnet2.bin.asr_inference``.

Every decoder's attention (ESPnet's dense one too) projects an input that beam search expanded to all
hypotheses once (:func:`espnet_lrsms.asr.lowrank_blocks.fuse_shared_input_projections`): the source
attention's keys and values of the encoder output are computed once per utterance; the scores are the same.

Shallow fusion (``--lm_train_config``, ``--lm_file``, ``lm_weight`` in the decoding config) takes the
LMs this project trains, LoRA-adapted ones included: the LM is built by
:class:`espnet_lrsms.lm.task.LoRALMTask` (:class:`ProjectSpeech2Text`), which loads the adapters at the
checkpoint's ranks. The ASR model is built by :class:`LowRankASRTask`, whose ``build_model_from_file``
refuses a checkpoint that does not fit the config.
"""
import logging
import sys
from pathlib import Path
from typing import Optional

import espnet_lrsms  # noqa: F401  (registers the low-rank classes with ESPnet's ASR task)
from espnet_lrsms.asr.inference import LowRankSpeech2Text, decode_data_dir
from espnet_lrsms.asr.input_audio import AudioInputError, check_decoding_inputs, trained_sampling_rate
from espnet_lrsms.lm.task import LoRALMTask
from espnet2.bin.asr_inference import get_parser
from espnet.utils.cli_utils import get_commandline_args


class ProjectSpeech2Text(LowRankSpeech2Text):
    """:class:`LowRankSpeech2Text` whose fusion LM is built by :class:`LoRALMTask`: a base LM or a
    LoRA-adapted one, loaded exactly and weights-only (ESPnet's ``LMTask`` would drop the adapters)."""

    lm_task = LoRALMTask


def train_config_of(kwargs: dict) -> Optional[Path]:
    """The ASR training config the decoding reads: ``--asr_train_config``, else the one beside the model."""
    if kwargs.get("asr_train_config"):
        return Path(kwargs["asr_train_config"])
    if kwargs.get("asr_model_file") and (Path(kwargs["asr_model_file"]).parent / "config.yaml").is_file():
        return Path(kwargs["asr_model_file"]).parent / "config.yaml"
    return None


def inference(**kwargs) -> None:
    """What ESPnet's ``inference(**kwargs)`` writes, plus ``score_components`` (see the module docstring). The
    audio is checked first: an utterance that is not mono, not at the training rate or not finite is named."""
    check_decoding_inputs(kwargs["data_path_and_name_and_type"], kwargs.get("key_file"),
                          trained_sampling_rate(train_config_of(kwargs)))
    decode_data_dir(ProjectSpeech2Text, **kwargs)


def main(cmd=None):
    print(get_commandline_args(), file=sys.stderr)
    parser = get_parser()
    args = parser.parse_args(cmd)
    kwargs = vars(args)
    kwargs.pop("config", None)
    try:
        inference(**kwargs)
    except AudioInputError as error:  # named: the file, each utterance and its fault
        logging.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
