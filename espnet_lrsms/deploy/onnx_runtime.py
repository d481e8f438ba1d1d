"""Decode with the files of :mod:`espnet_lrsms.deploy.onnx_export`, without PyTorch or ESPnet.

Needs onnxruntime, numpy, PyYAML, soundfile (wav files) and sentencepiece (BPE models only). The search is ESPnet's
joint CTC/attention beam search (``BatchBeamSearch`` with ``CTCPrefixScorer``, as ``Speech2Text`` runs it without an
LM): every running hypothesis is scored by ``(1 - ctc_weight)`` × the decoder's log-softmax + ``penalty`` +
``ctc_weight`` × the CTC prefix score's increment (CTC scores the int(1.5 × beam) best tokens by the rest, as ESPnet's
pre-beam; the decoder keeps each hypothesis' block outputs as ESPnet's cache); the ``beam_size`` best (hypothesis,
token) pairs go on; a pair ending in <eos> ends; <eos> is forced at ``maxlen``; with ``maxlenratio`` 0 ESPnet's
end detection stops the loop; the best ended hypothesis wins.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import onnxruntime
import yaml

PathLike = Union[str, Path]
LOGZERO = -1e10  # ESPnet's CTCPrefixScoreTH "log zero"
END_DETECT_M = 3  # ESPnet's end_detect: the last M lengths' best ended hypotheses ...
END_DETECT_D = np.log(np.exp(-10))  # ... each this far below the best one


@dataclass
class Hypothesis:
    yseq: List[int]  # <sos> first
    score: float
    ctc_state: np.ndarray  # (T, 2): log-probs of the prefix ending in a non-blank / a blank at each frame
    ctc_score: float  # the prefix's CTC score
    cache: List[np.ndarray]  # each decoder block's output for yseq[:-1]: (len(yseq) - 1, d)


def ctc_prefix_scores(
    logp: np.ndarray, yseq: Sequence[int], state: np.ndarray, ids: np.ndarray, blank: int, eos: int
) -> Tuple[np.ndarray, np.ndarray]:
    """CTC prefix scores of ``yseq`` + c for the tokens c in ``ids`` (Watanabe et al. 2017, Algorithm 2).

    ``logp`` (T, V) CTC log-probs, ``state`` (T, 2) the prefix's forward variables (ending in a non-blank, in a
    blank). Returns the scores (V,), LOGZERO outside ``ids``, and the forward variables (len(ids), T, 2) of each
    extended prefix. <eos> scores the whole prefix, in ``ids`` or not; blank gets LOGZERO.
    """
    frames, vocab = logp.shape
    length = len(yseq) - 1
    x = logp[:, ids]  # (T, n)
    r = np.full((frames, 2, len(ids)), LOGZERO, dtype=logp.dtype)
    if length == 0:
        r[0, 0] = x[0]
    r_sum = np.logaddexp(state[:, 0], state[:, 1])  # (T,)
    phi = np.repeat(r_sum[:, None], len(ids), axis=1)  # (T, n)
    phi[:, ids == yseq[-1]] = state[:, 1:2]  # a repeated label needs a blank between
    start = max(length, 1)
    psi_ids = r[start - 1, 0].copy()
    for t in range(start, frames):
        r[t, 0] = np.logaddexp(r[t - 1, 0], phi[t - 1]) + x[t]
        r[t, 1] = np.logaddexp(r[t - 1, 0], r[t - 1, 1]) + logp[t, blank]
        psi_ids = np.logaddexp(psi_ids, phi[t - 1] + x[t])
    psi = np.full(vocab, LOGZERO, dtype=logp.dtype)
    psi[ids] = psi_ids
    psi[eos] = r_sum[-1]
    psi[blank] = LOGZERO
    return psi, np.moveaxis(r, 2, 0)


def end_detect(ended: List[Hypothesis], i: int) -> bool:
    """ESPnet's ``end_detect``: the best ended hypotheses of the last M lengths are all far below the best."""
    if not ended:
        return False
    best = max(h.score for h in ended)
    count = 0
    for m in range(END_DETECT_M):
        same = [h.score for h in ended if len(h.yseq) == i - m]
        if same and max(same) - best < END_DETECT_D:
            count += 1
    return count == END_DETECT_M


class OnnxSpeech2Text:
    """Waveform (T,) float at the model's sample rate -> best hypothesis (text, tokens, token ids, score).

    Args:
        model_dir: the export's directory (``meta.yaml``, ``encoder.onnx``, ``decoder.onnx``).
        int8: use ``encoder.int8.onnx`` and ``decoder.int8.onnx``.
        beam_size, ctc_weight, penalty, maxlenratio, minlenratio: override ``meta.yaml``'s decoding options.
    """

    def __init__(self, model_dir: PathLike, int8: bool = False, **decoding):
        model_dir = Path(model_dir)
        with open(model_dir / "meta.yaml", encoding="utf-8") as f:
            self.meta = yaml.safe_load(f)
        self.options = {**self.meta["decoding"], **{k: v for k, v in decoding.items() if v is not None}}
        suffix = ".int8.onnx" if int8 else ".onnx"
        providers = ["CPUExecutionProvider"]
        self.encoder = onnxruntime.InferenceSession(str(model_dir / f"encoder{suffix}"), providers=providers)
        self.decoder = onnxruntime.InferenceSession(str(model_dir / f"decoder{suffix}"), providers=providers)
        self.token_list = self.meta["token_list"]
        self.sos, self.eos, self.blank = self.meta["sos_id"], self.meta["eos_id"], self.meta["blank_id"]
        self.sentencepiece = None
        if self.meta.get("bpemodel"):
            import sentencepiece

            self.sentencepiece = sentencepiece.SentencePieceProcessor(model_file=str(model_dir / self.meta["bpemodel"]))

    def encode(self, speech: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Encoder output (T', D) and CTC log-probs (T', V) of one waveform."""
        speech = np.asarray(speech, dtype=np.float32)[None]
        encoder_out, lengths, logp = self.encoder.run(
            None, {"speech": speech, "speech_lengths": np.array([speech.shape[1]], dtype=np.int64)}
        )
        return encoder_out[0, : lengths[0]], logp[0, : lengths[0]]

    def beam_search(self, memory: np.ndarray, logp: np.ndarray) -> List[Hypothesis]:
        """The ended hypotheses, best first."""
        beam, ctc_weight = int(self.options["beam_size"]), float(self.options["ctc_weight"])
        penalty, maxlenratio = float(self.options["penalty"]), float(self.options["maxlenratio"])
        minlenratio = float(self.options["minlenratio"])
        pre_beam = int(1.5 * beam)
        frames = memory.shape[0]
        if maxlenratio == 0:
            maxlen = frames
        elif maxlenratio < 0:
            maxlen = -int(maxlenratio)
        else:
            maxlen = max(1, int(maxlenratio * frames))
        minlen = -int(minlenratio) if minlenratio < 0 else int(minlenratio * frames)
        initial = np.full((frames, 2), LOGZERO, dtype=logp.dtype)
        initial[:, 1] = np.cumsum(logp[:, self.blank])
        cache_inputs = [i for i in self.decoder.get_inputs() if i.name.startswith("cache_")]
        empty = [np.zeros((0, i.shape[2]), dtype=np.float32) for i in cache_inputs]  # (0, d) per decoder block
        running = [Hypothesis([self.sos], 0.0, initial, 0.0, empty)]
        ended: List[Hypothesis] = []
        for i in range(maxlen):
            ys = np.array([h.yseq for h in running], dtype=np.int64)
            batch_memory = np.repeat(memory[None], len(running), axis=0)
            feeds = {"ys": ys, "memory": batch_memory}
            feeds.update({c.name: np.stack([h.cache[j] for h in running]) for j, c in enumerate(cache_inputs)})
            att, *new_cache = self.decoder.run(None, feeds)
            vocab = att.shape[1]
            scores, states, ctc_scores = [], [], []
            for hyp, att_row in zip(running, att):
                full = (1 - ctc_weight) * att_row + penalty
                # ESPnet's pre-beam: CTC scores only the int(1.5 beam) best tokens by the other scores
                ids = np.argsort(-full, kind="stable")[:pre_beam] if pre_beam < vocab else np.arange(vocab)
                psi, new_states = ctc_prefix_scores(logp, hyp.yseq, hyp.ctc_state, ids, self.blank, self.eos)
                scores.append(hyp.score + full + ctc_weight * (psi - hyp.ctc_score))
                position = np.full(vocab, -1)
                position[ids] = np.arange(len(ids))
                states.append((new_states, position))
                ctc_scores.append(psi)
            flat = np.concatenate(scores)
            best: List[Hypothesis] = []
            for j in np.argsort(-flat, kind="stable")[:beam]:
                h, c = divmod(int(j), vocab)
                new_states, position = states[h]
                state = new_states[position[c]] if position[c] >= 0 else np.full_like(initial, LOGZERO)
                best.append(Hypothesis(running[h].yseq + [c], float(flat[j]), state, float(ctc_scores[h][c]),
                                       [block[h] for block in new_cache]))
            if i == maxlen - 1:
                best = [Hypothesis(h.yseq + [self.eos], h.score, h.ctc_state, h.ctc_score, h.cache) for h in best]
            running = []
            for hyp in best:
                if hyp.yseq[-1] == self.eos:
                    if i >= minlen:
                        ended.append(hyp)
                else:
                    running.append(hyp)
            if maxlenratio == 0 and end_detect(ended, i):
                break
            if not running:
                break
        return sorted(ended, key=lambda h: h.score, reverse=True)

    def text(self, token_ids: Sequence[int]) -> Tuple[str, List[str]]:
        tokens = [self.token_list[i] for i in token_ids]
        if self.sentencepiece is not None:
            return self.sentencepiece.decode_pieces(tokens), tokens
        if self.meta["token_type"] == "char":
            return "".join(" " if t == "<space>" else t for t in tokens), tokens
        return " ".join(tokens), tokens

    def __call__(self, speech: np.ndarray) -> Tuple[str, List[str], List[int], float]:
        """(text, tokens, token ids, score) of the best hypothesis; an empty text when none ended."""
        memory, logp = self.encode(speech)
        hyps = self.beam_search(memory, logp)
        if not hyps:
            return "", [], [], float("-inf")
        token_ids = [t for t in hyps[0].yseq[1:-1] if t != self.blank]
        text, tokens = self.text(token_ids)
        return text, tokens, token_ids, hyps[0].score


def decode_wav_scp(model_dir: PathLike, wav_scp: PathLike, int8: bool = False, **decoding) -> List[Tuple[str, str]]:
    """(utterance id, text) for every line ``<id> <wav path>`` of ``wav_scp``."""
    import soundfile

    speech2text = OnnxSpeech2Text(model_dir, int8=int8, **decoding)
    results = []
    with open(wav_scp, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            utt, path = line.strip().split(maxsplit=1)
            speech, _ = soundfile.read(path, dtype="float32")
            results.append((utt, speech2text(speech)[0]))
    return results
