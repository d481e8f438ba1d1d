"""ASR decoding: ``espnet2.bin.asr_inference`` with the low-rank classes registered, writing the
per-scorer scores of every n-best hypothesis too.

Takes every argument ESPnet's own ``python -m espnet2.bin.asr_inference`` takes and writes what it
writes. ESPnet keeps only the total ``score`` of a hypothesis; this adds, next to it,
``<n>best_recog/score_components``: per utterance a JSON object
``{"scores": {"decoder": …, "ctc": …, "length_bonus": …}, "weights": {"decoder": 0.7, …}}`` with
``score = Σ weights[k]·scores[k]`` (the beam search's own scorers and weights), which N-best
rescoring (:mod:`espnet_lrsms.lm.rescore`) can recombine.

How: ESPnet's ``inference()`` runs unchanged, with its ``Speech2Text`` swapped for a subclass that
records each call's hypotheses in call order; afterwards each ``<n>best_recog/score`` file (written
in the same order) is read back, matched to the recorded hypotheses, and every match is checked
(the score written must be the recorded hypothesis' score) before ``score_components`` is written.
Outputs it cannot match (multi-speaker and enhancement tasks) get no ``score_components``.

Every decoder's attention (ESPnet's dense one too) projects an input that beam search expanded to all
hypotheses once (:func:`espnet_lrsms.asr.lowrank_blocks.fuse_shared_input_projections`): the source
attention's keys and values of the encoder output are computed once per utterance; the scores are the same.

Shallow fusion (``--lm_train_config``, ``--lm_file``, ``lm_weight`` in the decoding config) takes the
LMs this project trains, LoRA-adapted ones included (:class:`FusionLM`). The ASR model is built by
:class:`LowRankASRTask`, whose ``build_model_from_file`` refuses a checkpoint that does not fit the config.
"""
import json
import logging
import sys
from pathlib import Path
from typing import List, Optional

import espnet_lrsms  # noqa: F401  (registers the low-rank classes with ESPnet's ASR task)
from espnet_lrsms.asr.input_audio import AudioInputError, check_decoding_inputs, trained_sampling_rate
from espnet_lrsms.asr.lowrank_blocks import fuse_shared_input_projections
from espnet_lrsms.fileio import split_kaldi_line, write_text_atomic
from espnet_lrsms.tasks.asr import LowRankASRTask
from espnet_lrsms.tasks.lm_scorer import load_lm
from espnet2.bin import asr_inference as espnet_asr_inference
from espnet2.bin.asr_inference import Speech2Text, get_parser  # noqa: F401
from espnet2.tasks.asr import ASRTask
from espnet2.tasks.lm import LMTask
from espnet.nets.pytorch_backend.transformer.subsampling import TooShortUttError
from espnet.utils.cli_utils import get_commandline_args

COMPONENTS_FILE = "score_components"


class RecordingSpeech2Text(Speech2Text):
    """``Speech2Text`` that keeps every call's n-best hypotheses (None for a too-short utterance)."""

    calls: List[Optional[list]] = []
    instances: List["RecordingSpeech2Text"] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        decoder = getattr(self.asr_model, "decoder", None)
        if decoder is not None:  # the encoder output's k/v projected once per utterance, not per hypothesis
            fuse_shared_input_projections(decoder, dense=True)
        type(self).instances.append(self)

    def __call__(self, *args, **kwargs):
        try:
            results = super().__call__(*args, **kwargs)
        except TooShortUttError:
            type(self).calls.append(None)
            raise
        type(self).calls.append(results)
        return results


def _as_float(value) -> float:
    return float(value.item()) if hasattr(value, "item") else float(value)


def _components(hyp, weights) -> dict:
    scores = {k: _as_float(v) for k, v in (hyp.scores or {}).items()}
    return {"scores": scores, "weights": {k: float(weights[k]) for k in scores if k in weights}}


def write_score_components(output_dir: Path, calls: List[Optional[list]], weights: dict, nbest: int) -> bool:
    """Write ``<n>best_recog/score_components`` for n = 1 … nbest; False (and nothing written) if the
    recorded hypotheses do not match ESPnet's ``score`` files line for line."""
    hyps_per_call = []
    for results in calls:
        if results is None:
            hyps_per_call.append(None)  # ESPnet writes nbest empty entries with score 0.0
            continue
        if isinstance(results, tuple):  # (n-best, intermediate CTC outputs)
            results = results[0]
        if not all(isinstance(r, (list, tuple)) and len(r) == 4 for r in results):
            logging.warning("score_components: hypotheses of an unsupported form (multi-speaker?); not written")
            return False
        hyps_per_call.append([r[3] for r in results[:nbest]])
    outputs = {}
    for n in range(1, nbest + 1):
        score_file = output_dir / f"{n}best_recog" / "score"
        if not score_file.is_file():
            break
        lines = score_file.read_text(encoding="utf-8").splitlines()
        expected = [(None if hyps is None else hyps[n - 1]) for hyps in hyps_per_call if hyps is None or len(hyps) >= n]
        if len(lines) != len(expected):
            logging.warning("score_components: %s has %d lines for %d hypotheses; not written", score_file, len(lines), len(expected))
            return False
        rows = []
        for line, hyp in zip(lines, expected):
            key, written = split_kaldi_line(line)
            if hyp is None:
                rows.append(f"{key} {json.dumps({'scores': {}, 'weights': {}})}\n")
                continue
            if written != str(hyp.score):
                logging.warning("score_components: %s: %s has score %s, the recorded hypothesis %s; not written", score_file, key, written, hyp.score)
                return False
            rows.append(f"{key} {json.dumps(_components(hyp, weights))}\n")
        outputs[score_file.parent / COMPONENTS_FILE] = "".join(rows)
    for path, content in outputs.items():
        write_text_atomic(path, content)
    return True


class FusionLM:
    """What ESPnet's decoding builds a shallow-fusion LM with (``--lm_train_config``, ``--lm_file``): the
    base LM or a LoRA-adapted one (adapters at the checkpoint's ranks), loaded strictly and weights-only."""

    @staticmethod
    def build_model_from_file(config_file, model_file, device="cpu"):
        return load_lm(config_file, model_file, device)


def train_config_of(kwargs: dict) -> Optional[Path]:
    """The ASR training config the decoding reads: ``--asr_train_config``, else the one beside the model."""
    if kwargs.get("asr_train_config"):
        return Path(kwargs["asr_train_config"])
    if kwargs.get("asr_model_file") and (Path(kwargs["asr_model_file"]).parent / "config.yaml").is_file():
        return Path(kwargs["asr_model_file"]).parent / "config.yaml"
    return None


def inference(**kwargs) -> None:
    """ESPnet's ``inference(**kwargs)`` plus ``score_components`` (see the module docstring). The audio
    is checked first: an utterance that is not mono, not at the training rate or not finite is named."""
    check_decoding_inputs(kwargs["data_path_and_name_and_type"], kwargs.get("key_file"),
                          trained_sampling_rate(train_config_of(kwargs)))
    RecordingSpeech2Text.calls, RecordingSpeech2Text.instances = [], []
    espnet_asr_inference.Speech2Text = RecordingSpeech2Text
    espnet_asr_inference.LMTask = FusionLM
    espnet_asr_inference.ASRTask = LowRankASRTask  # loads the checkpoint strictly and weights-only
    try:
        espnet_asr_inference.inference(**kwargs)
    finally:
        espnet_asr_inference.Speech2Text = Speech2Text
        espnet_asr_inference.LMTask = LMTask
        espnet_asr_inference.ASRTask = ASRTask
    instances = RecordingSpeech2Text.instances
    beam_search = getattr(instances[0], "beam_search", None) if instances else None
    if beam_search is None or not hasattr(beam_search, "weights"):
        logging.warning("score_components: not a joint CTC/attention beam search; not written")
        return
    write_score_components(Path(kwargs["output_dir"]), RecordingSpeech2Text.calls, dict(beam_search.weights), kwargs["nbest"])
    RecordingSpeech2Text.calls, RecordingSpeech2Text.instances = [], []


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
