"""Decoding a data directory through ESPnet's own ``espnet2.bin.asr_inference.inference()``, for the ASR and
the AVSR command alike, plus each hypothesis' per-scorer scores.

ESPnet's ``inference()`` builds its decoder as ``Speech2Text`` (which builds its model with ``ASRTask`` and a
fusion LM with ``LMTask``), reads the data with ``ASRTask``'s iterator and writes the decode layout
``<output_dir>/<n>best_recog/{text,token,token_int,score}``. :func:`decode_data_dir` runs it unchanged with
those three names of its module standing for the classes given (:func:`espnet_classes`): a ``Speech2Text``
subclass that records its hypotheses (:class:`RecordingMixin`), the model family's task and :class:`FusionLM`.
ESPnet keeps only the total ``score`` of a hypothesis; afterwards each ``<n>best_recog/score`` file (written
in call order) is read back, matched to the recorded hypotheses, and every match is checked (the score
written must be the recorded hypothesis' score) before ``score_components`` is written
(:func:`espnet_lrsms.lm.nbest.write_components`): per utterance
``{"scores": {"decoder": …, "ctc": …, "length_bonus": …}, "weights": {"decoder": 0.7, …}}`` with
``score = Σ weights[k]·scores[k]`` (the beam search's own scorers and weights), which N-best rescoring
(:mod:`espnet_lrsms.lm.rescore`) can recombine. Outputs it cannot match (multi-speaker and enhancement
tasks) get no ``score_components``.

The three names are module globals of ESPnet's ``asr_inference``: one decoding at a time per process.
"""
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from espnet2.bin import asr_inference as espnet_asr_inference
from espnet.nets.pytorch_backend.transformer.subsampling import TooShortUttError

from espnet_lrsms.fileio import split_kaldi_line
from espnet_lrsms.text.nbest import write_components
from espnet_lrsms.lm.task import load_lm


class FusionLM:
    """What ESPnet's decoding builds a shallow-fusion LM with (``--lm_train_config``, ``--lm_file``): the
    base LM or a LoRA-adapted one (adapters at the checkpoint's ranks), loaded strictly and weights-only."""

    @staticmethod
    def build_model_from_file(config_file, model_file, device="cpu"):
        return load_lm(config_file, model_file, device)


@contextmanager
def espnet_classes(speech2text_class: Optional[type] = None, asr_task: Optional[type] = None) -> Iterator[None]:
    """Within the block, ESPnet's ``asr_inference`` module builds its decoder as ``speech2text_class``, its
    model (and data iterator) with ``asr_task`` and a fusion LM with :class:`FusionLM`; None keeps a name
    as it is. The names are put back as they were afterwards."""
    wanted = {"Speech2Text": speech2text_class, "ASRTask": asr_task, "LMTask": FusionLM}
    saved = {name: getattr(espnet_asr_inference, name) for name in wanted}
    for name, value in wanted.items():
        if value is not None:
            setattr(espnet_asr_inference, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(espnet_asr_inference, name, value)


class RecordingMixin:
    """Mixin for a ``Speech2Text`` class: the class keeps every instance built (``instances``) and every
    call's n-best (``calls``, None for a too-short utterance), in call order; :func:`decode_data_dir` empties
    both before and after a run."""

    calls: List[Optional[Any]] = []
    instances: List[Any] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        type(self).instances.append(self)

    def __call__(self, *args, **kwargs):
        try:
            results = super().__call__(*args, **kwargs)
        except TooShortUttError:
            type(self).calls.append(None)
            raise
        type(self).calls.append(results)
        return results


def decode_data_dir(speech2text_class: type, asr_task: type, **kwargs) -> bool:
    """ESPnet's ``inference(**kwargs)`` (every argument it takes) with ``speech2text_class`` (a
    :class:`RecordingMixin` ``Speech2Text``) and ``asr_task`` standing for its ``Speech2Text`` and ``ASRTask``,
    then ``<n>best_recog/score_components`` (see the module docstring). True when those were written."""
    speech2text_class.calls, speech2text_class.instances = [], []
    try:
        with espnet_classes(speech2text_class, asr_task):
            espnet_asr_inference.inference(**kwargs)
        instances = speech2text_class.instances
        beam_search = getattr(instances[0], "beam_search", None) if instances else None
        if beam_search is None or not hasattr(beam_search, "weights"):
            logging.warning("score_components: not a joint CTC/attention beam search; not written")
            return False
        return write_score_components(Path(kwargs["output_dir"]), speech2text_class.calls,
                                      dict(beam_search.weights), kwargs["nbest"])
    finally:
        speech2text_class.calls, speech2text_class.instances = [], []


def _as_float(value) -> float:
    return float(value.item()) if hasattr(value, "item") else float(value)


def write_score_components(output_dir: Path, calls: List[Optional[Any]], weights: Dict[str, float], nbest: int) -> bool:
    """Write ``<n>best_recog/score_components`` for n = 1 … nbest from the recorded ``calls``; False (and
    nothing written) if the recorded hypotheses do not match ESPnet's ``score`` files line for line."""
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
            logging.warning("score_components: %s has %d lines for %d hypotheses; not written",
                            score_file, len(lines), len(expected))
            return False
        entries = []
        for line, hyp in zip(lines, expected):
            key, written = split_kaldi_line(line)
            if hyp is None:
                entries.append((key, {}, {}))
                continue
            if written != str(hyp.score):
                logging.warning("score_components: %s: %s has score %s, the recorded hypothesis %s; not written",
                                score_file, key, written, hyp.score)
                return False
            entries.append((key, {k: _as_float(v) for k, v in (hyp.scores or {}).items()}, weights))
        outputs[score_file.parent] = entries
    for nbest_dir, entries in outputs.items():
        write_components(nbest_dir, entries)
    return True
