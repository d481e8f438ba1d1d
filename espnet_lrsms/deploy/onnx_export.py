"""Export a trained ASR experiment to ONNX: ``encoder.onnx``, ``decoder.onnx`` and ``meta.yaml``.

``encoder.onnx``: raw waveform ``speech`` (B, T) float32 and ``speech_lengths`` (B,) int64 in;
``encoder_out`` (B, T', D), ``encoder_out_lens`` (B,) and ``ctc_logp`` (B, T', V) out: the model's frontend
(ResNet-1D, or ESPnet's DefaultFrontend + normalize), encoder and CTC, as ``ESPnetASRModel.encode`` runs them in
evaluation mode. ``decoder.onnx``: ``ys`` (N, L) int64 prefixes (starting with <sos/eos>) and ``memory``
(N, T', D) in; ``logp`` (N, V), the log-softmax of the next token after each prefix, out: ESPnet's
``forward_one_step`` without its cache, i.e. what the attention decoder's ``batch_score`` gives a beam search.

Exported with torch's TorchScript-based exporter (``dynamo=False``), batch and time axes dynamic. A
:class:`FactorizedLinear` stays two MatMuls (``x·V`` then ``·Uᵀ``), so the graph holds the factors, never their
product. ``--quantize int8`` adds ``*.int8.onnx``: onnxruntime's dynamic quantization of the MatMul weights.
"""
import contextlib
import math
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from espnet_lrsms.asr.task import LowRankASRTask
from espnet_lrsms.fileio import replaced_on_success, write_config_yaml

PathLike = Union[str, Path]
OPSET = 17
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
    """Prefixes ``ys`` (N, L) and encoder output ``memory`` (N, T', D) -> next-token log-probs (N, V)."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        self.decoder = decoder

    def forward(self, ys: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        length = ys.size(1)
        causal = torch.tril(torch.ones(length, length, dtype=torch.bool, device=ys.device)).unsqueeze(0)
        logp, _ = self.decoder.forward_one_step(ys, causal, memory)
        return logp


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
            (ys, memory),
            paths["decoder"],
            ["ys", "memory"],
            ["logp"],
            {"ys": {0: "hyps", 1: "prefix"}, "memory": {0: "hyps", 1: "frames"}, "logp": {0: "hyps"}},
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


def quantize_int8(paths: Dict[str, Path]) -> Dict[str, Path]:
    """``<name>.int8.onnx`` beside each file: onnxruntime's dynamic int8 quantization of the MatMul weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = {}
    for name, path in paths.items():
        target = path.with_suffix(".int8.onnx")
        with replaced_on_success(target) as tmp:
            quantize_dynamic(str(path), str(tmp), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
        quantized[name] = target
    return quantized


def write_meta(
    args, out_dir: PathLike, files: Dict[str, Path], decoding: Optional[Dict] = None, model: Optional[nn.Module] = None
) -> Path:
    """``meta.yaml``: the files, the token list, the token type (and the BPE model, copied beside), the special
    token ids and the decoding options (ESPnet's Speech2Text defaults overridden by ``decoding``)."""
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
) -> Dict[str, Path]:
    """Export ``exp_dir``'s model (weights ``model_file``) to ``out_dir``; ``quantize="int8"`` adds the int8 files.
    Returns every file written by name (``encoder``, ``decoder``, ``encoder.int8``, ``decoder.int8``, ``meta``)."""
    if quantize not in (None, "int8"):
        raise ValueError(f"--quantize {quantize}: only int8 is supported")
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
        files.update({f"{name}.int8": path for name, path in quantize_int8(dict(files)).items()})
    files["meta"] = write_meta(args, out_dir, dict(files), decoding, model)
    return files
