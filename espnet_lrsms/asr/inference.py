"""Decoding a data directory: one loop over ESPnet's ``Speech2Text``, for the ASR and the AVSR command alike.

:func:`decode_data_dir` does what ESPnet's ``espnet2.bin.asr_inference.inference()`` does and writes what it
writes, line for line: it builds the decoder (``from_pretrained`` of the ``Speech2Text`` class given, with
ESPnet's options), reads the data with the task's streaming iterator (the training config's preprocessing),
decodes one utterance at a time and writes, with ESPnet's ``DatadirWriter``,
``<output_dir>/<n>best_recog/{text,token,token_int,score}`` (an utterance too short for the front end gets
ESPnet's empty hypothesis: text ``" "``, token ``<space>``, id 2, score ``0.0``, in each of the n-best folders).
ESPnet keeps only the total ``score`` of a hypothesis; beside it goes ``score_components``
(:func:`espnet_lrsms.text.nbest.write_components`): per hypothesis
``{"scores": {"decoder": …, "ctc": …, "length_bonus": …}, "weights": {"decoder": 0.7, …}}`` with
``score = Σ weights[k]·scores[k]`` (the beam search's own scorers and weights), which N-best rescoring
(:mod:`espnet_lrsms.lm.rescore`) can recombine; a decoder without such a beam search (a transducer) gets none.

:class:`LowRankSpeech2Text` is ESPnet's ``Speech2Text`` with the model built by a task of this package
(:attr:`asr_task`, which loads the checkpoint exactly and weights-only) and a shallow-fusion LM by
:attr:`lm_task` (ESPnet's ``LMTask`` here; the commands give the LM task that loads LoRA adapters too).
"""
import logging
from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence, Tuple

from espnet.nets.beam_search import Hypothesis
from espnet.nets.pytorch_backend.transformer.subsampling import TooShortUttError
from espnet2.bin.asr_inference import Speech2Text
from espnet2.fileio.datadir_writer import DatadirWriter
from espnet2.tasks.lm import LMTask
from espnet2.torch_utils.set_all_random_seed import set_all_random_seed

from espnet_lrsms.asr.lowrank_blocks import fuse_shared_input_projections
from espnet_lrsms.asr.task import LowRankASRTask
from espnet_lrsms.espnet_patches import speech2text_tasks
from espnet_lrsms.text.nbest import write_components


class LowRankSpeech2Text(Speech2Text):
    """ESPnet's ``Speech2Text`` built with :attr:`asr_task` and :attr:`lm_task`; with :attr:`fuse_projections`, the
    decoder's attention projects the encoder output once per utterance, not per hypothesis (same scores:
    :func:`espnet_lrsms.asr.lowrank_blocks.fuse_shared_input_projections`)."""

    asr_task: type = LowRankASRTask
    lm_task: type = LMTask
    fuse_projections = True

    def __init__(self, *args, **kwargs):
        with speech2text_tasks(self.asr_task, self.lm_task):
            super().__init__(*args, **kwargs)
        decoder = getattr(self.asr_model, "decoder", None)
        if self.fuse_projections and decoder is not None:
            fuse_shared_input_projections(decoder, dense=True)

    @classmethod
    def from_pretrained(cls, model_tag: Optional[str] = None, **kwargs) -> "LowRankSpeech2Text":
        """ESPnet's ``from_pretrained``: ``model_tag`` is a model of ESPnet's model zoo, downloaded and unpacked."""
        if model_tag is not None:
            from espnet_model_zoo.downloader import ModelDownloader

            kwargs.update(ModelDownloader().download_and_unpack(model_tag))
        return cls(**kwargs)


def decode_data_dir(
    speech2text_class: type,
    output_dir: str,
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    key_file: Optional[str] = None,
    *,
    batch_size: int = 1,
    dtype: str = "float32",
    nbest: int = 1,
    ngpu: int = 0,
    seed: int = 0,
    num_workers: int = 1,
    log_level="INFO",
    allow_variable_data_keys: bool = False,
    model_tag: Optional[str] = None,
    word_lm_train_config: Optional[str] = None,
    word_lm_file: Optional[str] = None,
    enh_s2t_task: bool = False,
    multi_asr: bool = False,
    **options,
) -> None:
    """Decode the data with ``speech2text_class`` (a :class:`LowRankSpeech2Text`, whose ``asr_task`` reads the data;
    ``options``: ESPnet's ``Speech2Text`` options) into ``output_dir`` (see the module docstring); the arguments
    are those of ESPnet's ``inference()``."""
    if batch_size > 1:
        raise NotImplementedError("batch decoding is not implemented")  # ESPnet's refusals, in its words
    if word_lm_train_config is not None:
        raise NotImplementedError("Word LM is not implemented")
    if ngpu > 1:
        raise NotImplementedError("only single GPU decoding is supported")
    if enh_s2t_task or multi_asr:
        raise NotImplementedError("--enh_s2t_task / --multi_asr: multi-speaker models are ESPnet's; decode them "
                                  "with python -m espnet2.bin.asr_inference")
    logging.basicConfig(level=log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    set_all_random_seed(seed)
    speech2text = speech2text_class.from_pretrained(model_tag=model_tag, device="cuda" if ngpu >= 1 else "cpu",
                                                    dtype=dtype, nbest=nbest, **options)
    task, train_args = speech2text_class.asr_task, speech2text.asr_train_args
    loader = task.build_streaming_iterator(
        data_path_and_name_and_type, dtype=dtype, batch_size=batch_size, key_file=key_file, num_workers=num_workers,
        preprocess_fn=task.build_preprocess_fn(train_args, False), collate_fn=task.build_collate_fn(train_args, False),
        allow_variable_data_keys=allow_variable_data_keys, inference=True,
    )
    search = speech2text.beam_search
    weights = dict(search.weights) if hasattr(search, "weights") else None
    components = defaultdict(list)  # <n>best_recog -> (key, scores, weights) per line of its score file
    with DatadirWriter(output_dir) as writer:
        for keys, batch in loader:
            key = keys[0]
            try:
                results = speech2text(**{k: v[0] for k, v in batch.items() if not k.endswith("_lengths")})
            except TooShortUttError as error:  # ESPnet's empty hypothesis, nbest times
                logging.warning(f"Utterance {keys} {error}")
                results = [[" ", ["<space>"], [2], Hypothesis(score=0.0, scores={}, states={}, yseq=[])]] * nbest
            interctc = None
            if isinstance(results, tuple):  # (n-best, intermediate CTC outputs of the encoder's layers)
                results, interctc = results
            for n, (text, token, token_int, hyp) in zip(range(1, nbest + 1), results):
                nbest_writer = writer[f"{n}best_recog"]
                nbest_writer["token"][key] = " ".join(token)
                nbest_writer["token_int"][key] = " ".join(map(str, token_int))
                nbest_writer["score"][key] = str(hyp.score)
                if text is not None:
                    nbest_writer["text"][key] = text
                if weights is not None:  # a transducer's hypotheses have no per-scorer scores
                    components[f"{n}best_recog"].append((key, {k: float(v) for k, v in hyp.scores.items()}, weights))
            for layer, text in (interctc or {}).items():
                writer["1best_recog"][f"encoder_interctc_layer{layer}.txt"][key] = " ".join(text)
    if weights is None:
        logging.warning("score_components: not a joint CTC/attention beam search; not written")
        return
    for folder, entries in components.items():
        write_components(Path(output_dir) / folder, entries)
