"""Export a trained ASR experiment to ONNX: ``encoder.onnx``, ``decoder.onnx`` and ``meta.yaml``.

``encoder.onnx``: raw waveform ``speech`` (B, T) float32 and ``speech_lengths`` (B,) int64 in;
``encoder_out`` (B, T', D), ``encoder_out_lens`` (B,) and ``ctc_logp`` (B, T', V) out: the model's frontend
(ResNet-1D, or ESPnet's DefaultFrontend + normalize), encoder and CTC, as ``ESPnetASRModel.encode`` runs them in
evaluation mode. ``decoder.onnx``: ``ys`` (N, L) int64 prefixes (starting with <sos/eos>), ``memory``
(N, T', D) and ``cache_<i>`` (N, L - 1, d), block i's output for ``ys[:, :-1]``, in; ``logp`` (N, V), the
log-softmax of the next token after each prefix, and ``new_cache_<i>`` (N, L, d) out: ESPnet's
``forward_one_step`` with its cache, i.e. what the attention decoder's ``batch_score`` gives a beam search.

Exported with torch's TorchScript-based exporter (``dynamo=False``), batch and time axes dynamic. A
:class:`FactorizedLinear` stays two MatMuls (``x·V`` then ``·Uᵀ``), so the graph holds the factors, never their
product. ``--quantize int8`` adds ``*.int8.onnx``: onnxruntime's dynamic quantization of the MatMul weights
(``--quantize_ops MatMul,Conv``: of the convolution weights too, run as ``ConvInteger``).
"""
import contextlib
import math
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from espnet_lrsms.asr.task import LowRankASRTask
from espnet_lrsms.fileio import replaced_on_success, write_config_yaml

PathLike = Union[str, Path]
OPSET = 17
QUANTIZE_OPS = ("MatMul", "Conv")  # the op types --quantize_ops accepts (onnxruntime's dynamic quantization)
# ESPnet's Speech2Text defaults (espnet2/bin/asr_inference.py), used where no decoding config is given
DECODING_DEFAULTS = {
    "beam_size": 20,
    "ctc_weight": 0.5,
    "penalty": 0.0,
    "maxlenratio": 0.0,
    "minlenratio": 0.0,
    "nbest": 1,
}


class EncoderWithCTC(nn.Module):
    """Waveform (B, T) and lengths (B,) -> encoder output (B, T', D), its lengths (B,), CTC log-probs (B, T', V)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor):
        encoder_out, encoder_out_lens = self.model.encode(speech, speech_lengths)
        return encoder_out, encoder_out_lens, self.model.ctc.log_softmax(encoder_out)


class DecoderScore(nn.Module):
    """Prefixes ``ys`` (N, L), encoder output ``memory`` (N, T', D) and each decoder block's cache (N, L - 1, d), the
    block outputs of ``ys[:, :-1]`` ((N, 0, d) at the first step) -> next-token log-probs (N, V) and each block's
    new cache (N, L, d): ESPnet's ``forward_one_step`` with its cache, as ``batch_score`` runs it in a beam search
    (only the last position's query, source attention and feed-forward are computed)."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        self.decoder = decoder

    def forward(self, ys: torch.Tensor, memory: torch.Tensor, *cache: torch.Tensor):
        length = ys.size(1)
        causal = torch.tril(torch.ones(length, length, dtype=torch.bool, device=ys.device)).unsqueeze(0)
        logp, new_cache = self.decoder.forward_one_step(ys, causal, memory, cache=list(cache) or None)
        return (logp, *new_cache)


class DftStft(nn.Module):
    """ESPnet's ``Stft`` (single channel) as a real Conv1d over a windowed DFT basis: torch's TorchScript-based
    exporter has no complex STFT. Same options (centre with reflect padding, window padded to ``n_fft``,
    onesided, normalized), same output (B, frames, freq, 2) and lengths, padded frames zeroed."""

    def __init__(self, stft: nn.Module):
        super().__init__()
        self.n_fft, self.hop_length, self.center = stft.n_fft, stft.hop_length, stft.center
        win_length = stft.win_length or stft.n_fft
        window = getattr(torch, f"{stft.window}_window")(win_length) if stft.window else torch.ones(win_length)
        left = (self.n_fft - win_length) // 2
        window = F.pad(window, (left, self.n_fft - win_length - left))
        bins = self.n_fft // 2 + 1 if stft.onesided else self.n_fft
        angle = 2 * math.pi * torch.outer(torch.arange(bins), torch.arange(self.n_fft)).double() / self.n_fft
        basis = torch.cat([torch.cos(angle), -torch.sin(angle)]) * window.double()
        if stft.normalized:
            basis = basis / math.sqrt(self.n_fft)
        self.register_buffer("basis", basis.float().unsqueeze(1), persistent=False)  # (2 * bins, 1, n_fft)

    def forward(self, input: torch.Tensor, ilens: torch.Tensor):
        x = input.unsqueeze(1)
        if self.center:
            x = F.pad(x, (self.n_fft // 2, self.n_fft // 2), mode="reflect")
            ilens = ilens + 2 * (self.n_fft // 2)
        spec = F.conv1d(x, self.basis, stride=self.hop_length)  # (B, 2 * bins, frames)
        real, imag = spec.chunk(2, dim=1)
        output = torch.stack([real, imag], dim=-1).transpose(1, 2)  # (B, frames, bins, 2)
        olens = torch.div(ilens - self.n_fft, self.hop_length, rounding_mode="trunc") + 1
        frames = torch.arange(output.size(1), device=output.device)[None, :] >= olens[:, None]
        return output.masked_fill(frames[:, :, None, None], 0.0), olens


@contextlib.contextmanager
def exportable(model: nn.Module):
    """Within the block, ESPnet's STFT front end computes its STFT through :class:`DftStft`."""
    frontend = getattr(model, "frontend", None)
    stft = getattr(frontend, "stft", None)
    if stft is None or type(stft).__name__ != "Stft":
        yield model
        return
    frontend.stft = DftStft(stft)
    try:
        yield model
    finally:
        frontend.stft = stft


def resolve_model_file(exp_dir: Path, model_file: PathLike) -> Path:
    """``model_file`` as given if it exists, else the file of that name in ``exp_dir``."""
    path = Path(model_file)
    if not path.is_file() and (exp_dir / path).is_file():
        path = exp_dir / path
    if not path.is_file():
        raise ValueError(f"--model_file {model_file}: no such file (nor {exp_dir / model_file})")
    return path


def load_asr_experiment(exp_dir: PathLike, model_file: PathLike):
    """The model of ``exp_dir/config.yaml`` with the weights of ``model_file``, in eval mode, and its args."""
    exp_dir = Path(exp_dir)
    config = exp_dir / "config.yaml"
    if not config.is_file():
        raise ValueError(f"--exp_dir {exp_dir}: no config.yaml")
    with open(config, encoding="utf-8") as f:
        if "video_frontend" in (yaml.safe_load(f) or {}):
            raise ValueError(f"{config}: an AVSR experiment; only ASR experiments are exported so far")
    model, args = LowRankASRTask.build_model_from_file(config, resolve_model_file(exp_dir, model_file), "cpu")
    return model.eval(), args


def export_onnx(
    model: nn.Module, out_dir: PathLike, example_samples: int = 32000, opset: int = OPSET
) -> Dict[str, Path]:
    """Write ``encoder.onnx`` and ``decoder.onnx`` of an ``ESPnetASRModel`` to ``out_dir``; returns their paths.

    ``example_samples`` is the waveform length traced (any length works afterwards: the axes are dynamic).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    generator = torch.Generator().manual_seed(0)
    speech = 0.1 * torch.randn(1, example_samples, generator=generator)
    lengths = torch.tensor([example_samples], dtype=torch.long)
    encoder = EncoderWithCTC(model).eval()
    decoder = DecoderScore(model.decoder).eval()
    with torch.no_grad():
        memory, _, _ = encoder(speech, lengths)
    ys = torch.tensor([[model.sos, 3, 4]], dtype=torch.long) % model.vocab_size
    blocks = len(model.decoder.decoders)
    with torch.no_grad():  # the cache of ys[:, :-1], as the previous step leaves it
        cache = decoder(ys[:, :-1], memory)[1:]
    cache_names = [f"cache_{i}" for i in range(blocks)]
    new_cache_names = [f"new_cache_{i}" for i in range(blocks)]
    paths = {"encoder": out_dir / "encoder.onnx", "decoder": out_dir / "decoder.onnx"}
    jobs = [
        (
            encoder,
            (speech, lengths),
            paths["encoder"],
            ["speech", "speech_lengths"],
            ["encoder_out", "encoder_out_lens", "ctc_logp"],
            {
                "speech": {0: "batch", 1: "samples"},
                "speech_lengths": {0: "batch"},
                "encoder_out": {0: "batch", 1: "frames"},
                "encoder_out_lens": {0: "batch"},
                "ctc_logp": {0: "batch", 1: "frames"},
            },
        ),
        (
            decoder,
            (ys, memory, *cache),
            paths["decoder"],
            ["ys", "memory", *cache_names],
            ["logp", *new_cache_names],
            {
                "ys": {0: "hyps", 1: "prefix"},
                "memory": {0: "hyps", 1: "frames"},
                "logp": {0: "hyps"},
                **{name: {0: "hyps", 1: "cached"} for name in cache_names},
                **{name: {0: "hyps", 1: "prefix"} for name in new_cache_names},
            },
        ),
    ]
    for module, inputs, path, input_names, output_names, dynamic_axes in jobs:
        with replaced_on_success(path) as tmp, torch.no_grad(), exportable(model):
            torch.onnx.export(
                module,
                inputs,
                str(tmp),
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    return paths


def parse_quantize_ops(ops: Union[str, Sequence[str]]) -> List[str]:
    """``"MatMul,Conv"`` (or a list) -> ``["MatMul", "Conv"]``; an error line naming an unknown op type."""
    names = [op.strip() for op in (ops.split(",") if isinstance(ops, str) else ops) if op.strip()]
    unknown = [op for op in names if op not in QUANTIZE_OPS]
    if unknown or not names:
        raise ValueError(f"--quantize_ops {ops if isinstance(ops, str) else ','.join(ops)}: "
                         f"expected a comma-separated subset of {','.join(QUANTIZE_OPS)}")
    return names


def quantize_int8(paths: Dict[str, Path], ops: Sequence[str] = ("MatMul",)) -> Dict[str, Path]:
    """``<name>.int8.onnx`` beside each file: onnxruntime's dynamic int8 quantization of the weights of the ``ops``
    nodes (default MatMul only; ``("MatMul", "Conv")`` also the convolutions, as ``ConvInteger``)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ops = parse_quantize_ops(ops)
    quantized = {}
    for name, path in paths.items():
        target = path.with_suffix(".int8.onnx")
        with replaced_on_success(target) as tmp:
            quantize_dynamic(str(path), str(tmp), op_types_to_quantize=ops, weight_type=QuantType.QInt8)
        quantized[name] = target
    return quantized


def write_meta(
    args,
    out_dir: PathLike,
    files: Dict[str, Path],
    decoding: Optional[Dict] = None,
    model: Optional[nn.Module] = None,
    int8_ops: Optional[Sequence[str]] = None,
) -> Path:
    """``meta.yaml``: the files, the token list, the token type (and the BPE model, copied beside), the special
    token ids, the decoding options (ESPnet's Speech2Text defaults overridden by ``decoding``) and, for int8
    files, the op types whose weights they quantize (``int8_ops``)."""
    out_dir = Path(out_dir)
    token_list: List[str] = list(args.token_list)
    meta = {
        "files": {name: path.name for name, path in files.items()},
        "token_type": args.token_type,
        "bpemodel": None,
        "blank_id": 0,
        "sos_id": len(token_list) - 1 if model is None else int(model.sos),
        "eos_id": len(token_list) - 1 if model is None else int(model.eos),
        "decoding": {**DECODING_DEFAULTS, **(decoding or {})},
        "int8_ops": None if int8_ops is None else list(int8_ops),
        "token_list": token_list,
    }
    if getattr(args, "bpemodel", None):
        target = out_dir / "bpe.model"
        shutil.copyfile(args.bpemodel, target)
        meta["bpemodel"] = target.name
    return write_config_yaml(out_dir / "meta.yaml", meta)


def export_experiment(
    exp_dir: PathLike,
    model_file: PathLike,
    out_dir: PathLike,
    quantize: Optional[str] = None,
    decoding_config: Optional[PathLike] = None,
    quantize_ops: Optional[Union[str, Sequence[str]]] = None,
) -> Dict[str, Path]:
    """Export ``exp_dir``'s model (weights ``model_file``) to ``out_dir``; ``quantize="int8"`` adds the int8 files
    (weights of the ``quantize_ops`` nodes: default MatMul only). Returns every file written by name (``encoder``,
    ``decoder``, ``encoder.int8``, ``decoder.int8``, ``meta``)."""
    if quantize not in (None, "int8"):
        raise ValueError(f"--quantize {quantize}: only int8 is supported")
    if quantize_ops is not None and quantize is None:
        raise ValueError("--quantize_ops needs --quantize int8")
    ops = parse_quantize_ops(quantize_ops if quantize_ops is not None else ["MatMul"])
    decoding = None
    if decoding_config is not None:
        with open(decoding_config, encoding="utf-8") as f:
            decoding = yaml.safe_load(f) or {}
    model, args = load_asr_experiment(exp_dir, model_file)
    if getattr(args, "bpemodel", None) and not Path(args.bpemodel).is_file():
        raise ValueError(
            f"{Path(exp_dir) / 'config.yaml'}: bpemodel {args.bpemodel}: no such file (paths in config.yaml are "
            "relative to the recipe directory: run from there, as ESPnet's decoding does)"
        )
    files = export_onnx(model, out_dir)
    if quantize == "int8":
        files.update({f"{name}.int8": path for name, path in quantize_int8(dict(files), ops).items()})
    files["meta"] = write_meta(args, out_dir, dict(files), decoding, model, ops if quantize == "int8" else None)
    return files
