"""ONNX export of the session's tone-data LR-SMS experiment (conftest.py ``tone_experiment``): the command's
files, PyTorch-equal outputs at lengths never seen at export, factorized layers kept as two MatMuls with the
linear-layer parameters counted to the one, the int8 files; and the ESPnet-free runtime's hypotheses against
ESPnet's Speech2Text."""
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import yaml
from onnx import numpy_helper

from espnet_lrsms.bin.export_onnx import main as export_main
from espnet_lrsms.deploy.onnx_export import load_asr_experiment
from espnet_lrsms.lowrank.factorized_linear import FactorizedLinear

from conftest import REPO

MODEL_FILE = "2epoch.pth"
DECODE_CONFIG = REPO / "conf" / "demo" / "decode_asr_tiny.yaml"  # beam 8, ctc_weight 0.3


@pytest.fixture(scope="module")
def exported(tone_experiment, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    assert export_main(["--exp_dir", str(tone_experiment), "--model_file", MODEL_FILE, "--out_dir", str(out),
                        "--quantize", "int8", "--decoding_config", str(DECODE_CONFIG)]) == 0
    model, _ = load_asr_experiment(tone_experiment, MODEL_FILE)
    return out, model


def session(path):
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def linear_weights_and_biases(path):
    """The graph's linear-layer parameters: initializers multiplied in a MatMul or Gemm (weights), and the
    initializers added to such a product (biases: an Add fed by that MatMul, or Gemm's C)."""
    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    weights, biases = {}, {}
    for node in graph.node:
        if node.op_type in ("MatMul", "Gemm"):
            weights.update({i: inits[i] for i in node.input[:2] if i in inits})
            if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2] in inits:
                biases[node.input[2]] = inits[node.input[2]]
        elif node.op_type == "Add":
            fed = [producer.get(i) for i in node.input]
            if any(p is not None and p.op_type == "MatMul" and any(i in inits for i in p.input) for p in fed):
                biases.update({i: inits[i] for i in node.input if i in inits})
    return weights, biases


def torch_linear_counts(*modules):
    weights = biases = 0
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, FactorizedLinear):
                weights += layer.u.numel() + layer.vt.numel()
            elif isinstance(layer, torch.nn.Linear):
                weights += layer.weight.numel()
            else:
                continue
            biases += 0 if layer.bias is None else layer.bias.numel()
    return weights, biases


def holds(matrices, block):
    """Whether ``block`` equals one of ``matrices`` or a column block of one (q, k, v share one Vᵀx product)."""
    for m in matrices:
        if m.ndim == 2 and m.shape[0] == block.shape[0]:
            for start in range(0, m.shape[1] - block.shape[1] + 1, block.shape[1]):
                if np.array_equal(m[:, start : start + block.shape[1]], block):
                    return True
    return False


@pytest.mark.end_to_end  # reads the trained tone experiment
def test_export_command_writes_the_files_and_meta(exported, tone_experiment):
    out, model = exported
    names = sorted(p.name for p in out.iterdir())
    assert names == ["decoder.int8.onnx", "decoder.onnx", "encoder.int8.onnx", "encoder.onnx", "meta.yaml"]
    meta = yaml.safe_load((out / "meta.yaml").read_text())
    config = yaml.safe_load((tone_experiment / "config.yaml").read_text())
    assert meta["token_list"] == config["token_list"]
    assert (meta["token_type"], meta["blank_id"], meta["sos_id"], meta["eos_id"]) == ("char", 0, 11, 11)
    assert {k: meta["decoding"][k] for k in ("beam_size", "ctc_weight", "penalty", "maxlenratio")} == {
        "beam_size": 8, "ctc_weight": 0.3, "penalty": 0.0, "maxlenratio": 0.0}  # from --decoding_config
    assert meta["files"]["encoder"] == "encoder.onnx"
    assert meta["int8_ops"] == ["MatMul"]  # --quantize int8 without --quantize_ops


@pytest.mark.end_to_end  # reads the trained tone experiment
def test_encoder_and_ctc_equal_pytorch_at_lengths_not_seen_at_export(exported):
    out, model = exported
    encoder = session(out / "encoder.onnx")
    generator = torch.Generator().manual_seed(1)
    for samples in (17_999, 53_123):  # 28 and 83 frames; the export traced 50
        speech = 0.1 * torch.randn(1, samples, generator=generator)
        lengths = torch.tensor([samples])
        with torch.no_grad():
            reference, reference_lens = model.encode(speech, lengths)
            reference_logp = model.ctc.log_softmax(reference)
        encoder_out, encoder_out_lens, logp = encoder.run(
            None, {"speech": speech.numpy(), "speech_lengths": lengths.numpy()}
        )
        assert encoder_out.shape == tuple(reference.shape) == (1, samples // 640, 64)
        assert encoder_out_lens.tolist() == reference_lens.tolist()
        np.testing.assert_allclose(encoder_out, reference.numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(logp, reference_logp.numpy(), atol=1e-4, rtol=0)


@pytest.mark.end_to_end  # reads the trained tone experiment
def test_decoder_gives_batch_score_for_prefixes_of_any_length(exported):
    """decoder.onnx takes ESPnet's cache (each block's outputs for the prefix without its last token; empty at the
    first step) and gives batch_score's log-probs and the new cache; the cache then feeds the next step."""
    out, model = exported
    decoder = session(out / "decoder.onnx")
    blocks, size = len(model.decoder.decoders), 64
    assert [i.name for i in decoder.get_inputs()] == ["ys", "memory"] + [f"cache_{i}" for i in range(blocks)]
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        memory, _ = model.encode(0.1 * torch.randn(1, 40_000, generator=generator), torch.tensor([40_000]))
    batch_memory = memory.expand(3, -1, -1)
    ys = torch.cat([torch.full((3, 1), model.sos), torch.randint(3, 11, (3, 6), generator=generator)], 1)
    cache = [np.zeros((3, 0, size), dtype=np.float32)] * blocks
    for length in range(1, 8):
        with torch.no_grad():
            reference, states = model.decoder.batch_score(ys[:, :length], [None] * 3, batch_memory)  # no cache
        logp, *cache = decoder.run(None, {"ys": ys[:, :length].numpy(), "memory": batch_memory.numpy().copy(),
                                          **{f"cache_{i}": c for i, c in enumerate(cache)}})
        assert logp.shape == (3, model.vocab_size)
        np.testing.assert_allclose(logp, reference.numpy(), atol=1e-4, rtol=0)
        assert [c.shape for c in cache] == [(3, length, size)] * blocks
        for i in range(blocks):
            np.testing.assert_allclose(cache[i], torch.stack([s[i] for s in states]).numpy(), atol=1e-4, rtol=0)


def assert_factorized_layers_kept(out, model, counts):
    """Each factorized layer's U and Vᵀ are MatMul weights (Vᵀ possibly stacked with q/k/v's), their product is
    not, and the graph's linear weights and biases equal PyTorch's nn.Linear + FactorizedLinear ones exactly."""
    for name, modules in (("encoder", (model.encoder, model.ctc)), ("decoder", (model.decoder,))):
        weights, biases = linear_weights_and_biases(out / f"{name}.onnx")
        matrices = list(weights.values())
        count_weights, count_biases = torch_linear_counts(*modules)
        assert sum(w.size for w in matrices) == count_weights
        assert sum(b.size for b in biases.values()) == count_biases
        factorized = [m for part in modules for m in part.modules() if isinstance(m, FactorizedLinear)]
        assert len(factorized) == counts[name]
        for layer in factorized:
            u, vt = layer.u.detach().numpy(), layer.vt.detach().numpy()
            assert holds(matrices, u.T), f"{name}: U {u.shape} of a factorized layer is not a MatMul weight"
            assert holds(matrices, vt.T), f"{name}: Vᵀ {vt.shape} of a factorized layer is not a MatMul weight"
            dense = (u @ vt).T
            assert not any(m.shape == dense.shape and np.allclose(m, dense, atol=1e-6) for m in matrices)


@pytest.mark.end_to_end  # reads the trained tone experiment
def test_factorized_layers_stay_two_matmuls_and_linear_parameters_match_to_the_one(exported):
    out, model = exported
    assert_factorized_layers_kept(out, model, {"encoder": 18, "decoder": 10})


@pytest.mark.end_to_end  # reads the trained tone experiment
def test_int8_files_are_smaller_and_run(exported):
    out, model = exported
    for name in ("encoder", "decoder"):
        assert (out / f"{name}.int8.onnx").stat().st_size < (out / f"{name}.onnx").stat().st_size
    graph = onnx.load(str(out / "encoder.int8.onnx")).graph
    assert sum(node.op_type == "DynamicQuantizeLinear" for node in graph.node) > 0
    speech = 0.1 * torch.randn(1, 24_000, generator=torch.Generator().manual_seed(3))
    feeds = {"speech": speech.numpy(), "speech_lengths": np.array([24_000])}
    fp32 = session(out / "encoder.onnx").run(None, feeds)
    int8 = session(out / "encoder.int8.onnx").run(None, feeds)
    assert int8[2].shape == fp32[2].shape == (1, 37, model.vocab_size)
    # int8 MatMul weights move the CTC log-probs a little, not to another model
    assert 0 < np.abs(int8[2] - fp32[2]).max() < 1.0


@pytest.mark.end_to_end  # reads the trained tone experiment
def test_conv_quantization_shrinks_the_encoder_and_keeps_the_hypotheses(exported, tone_data, tmp_path):
    """``--quantize_ops MatMul,Conv`` (here through ``quantize_int8`` on the fixture's fp32 files, no new export):
    the front end's and the Conformer blocks' convolutions become ConvInteger, encoder.int8.onnx shrinks from
    3.92 MB (MatMul only) to 3.16 MB, and the 16 tone utterances decode (beam 8) to fp32's hypotheses."""
    import shutil

    import soundfile

    from espnet_lrsms.deploy.onnx_export import quantize_int8
    from espnet_lrsms.deploy.onnx_runtime import OnnxSpeech2Text
    from espnet_lrsms.fileio import read_kaldi_table

    out, _ = exported
    for name in ("encoder.onnx", "decoder.onnx", "meta.yaml"):
        shutil.copyfile(out / name, tmp_path / name)
    conv = quantize_int8({"encoder": tmp_path / "encoder.onnx", "decoder": tmp_path / "decoder.onnx"},
                         ("MatMul", "Conv"))
    matmul_mb = (out / "encoder.int8.onnx").stat().st_size / 1e6
    conv_mb = conv["encoder"].stat().st_size / 1e6
    graph = onnx.load(str(conv["encoder"])).graph
    assert sum(node.op_type == "ConvInteger" for node in graph.node) > 0
    assert not any(node.op_type == "Conv" for node in graph.node)
    assert (round(matmul_mb, 2), round(conv_mb, 2)) == (3.92, 3.16)
    # the decoder has no convolution: the same quantization as MatMul only
    assert conv["decoder"].stat().st_size == (out / "decoder.int8.onnx").stat().st_size
    fp32, int8 = OnnxSpeech2Text(out), OnnxSpeech2Text(tmp_path, int8=True)  # meta.yaml: beam 8, ctc_weight 0.3
    differences = []
    for utt, path in read_kaldi_table(tone_data / "train" / "wav.scp").items():
        speech, _ = soundfile.read(path, dtype="float32")
        expected, got = fp32(speech)[0], int8(speech)[0]
        if got != expected:
            differences.append((utt, expected, got))
    assert differences == [], f"MatMul+Conv int8 hypotheses differ from fp32's: {differences}"


def test_export_command_refuses_unknown_quantize_ops(tmp_path):
    exp, out = tmp_path / "exp", tmp_path / "out"
    errors = []
    for extra in (["--quantize_ops", "MatMul,Conv"], ["--quantize", "int8", "--quantize_ops", "MatMul,Gemm"]):
        with pytest.raises(SystemExit) as error:
            export_main(["--exp_dir", str(exp), "--model_file", "model.pth", "--out_dir", str(out), *extra])
        errors.append(str(error.value))
    assert errors == ["export_onnx: --quantize_ops needs --quantize int8",
                      "export_onnx: --quantize_ops MatMul,Gemm: expected a comma-separated subset of MatMul,Conv"]
    assert not out.exists()


def test_export_command_names_what_is_missing_or_unsupported(tmp_path):
    exp, out = tmp_path / "exp", tmp_path / "out"
    command = ["--exp_dir", str(exp), "--model_file", "nope.pth", "--out_dir", str(out)]
    exp.mkdir()
    errors = []
    for config in (None, "frontend: resnet1d\n", "video_frontend: resnet2d\n"):
        if config is not None:
            (exp / "config.yaml").write_text(config)
        with pytest.raises(SystemExit) as error:
            export_main(command)
        errors.append(str(error.value))
    assert errors == [
        f"export_onnx: --exp_dir {exp}: no config.yaml",
        f"export_onnx: --model_file nope.pth: no such file (nor {exp / 'nope.pth'})",
        f"export_onnx: {exp / 'config.yaml'}: an AVSR experiment; only ASR experiments are exported so far",
    ]
    assert not out.exists()


# ---- the ESPnet-free runtime (espnet_lrsms.deploy.onnx_runtime) against ESPnet's Speech2Text

BLOCKED_IMPORTS = (
    "import sys, importlib.abc\n"
    "class Blocked(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path, target=None):\n"
    "        if name.split('.')[0] in ('torch', 'torchaudio', 'espnet', 'espnet2'):\n"
    "            raise ModuleNotFoundError(f'No module named {name!r} (blocked)', name=name)\n"
    "sys.meta_path.insert(0, Blocked())\n"
)


@pytest.mark.end_to_end  # reads the trained tone experiment
def test_runtime_hypotheses_equal_espnet_speech2text(exported, tone_experiment, tone_data):
    """At beam 8 CTC scores all 12 tokens (int(1.5 × 8) >= 12); the untrained-model test below covers the
    pre-beam."""
    beam_size = 8
    import soundfile
    from espnet2.bin.asr_inference import Speech2Text

    from espnet_lrsms.deploy.onnx_runtime import OnnxSpeech2Text
    from espnet_lrsms.fileio import read_kaldi_table

    out, _ = exported
    reference = Speech2Text(asr_train_config=str(tone_experiment / "config.yaml"),
                            asr_model_file=str(tone_experiment / MODEL_FILE), beam_size=beam_size, ctc_weight=0.3)
    runtime = OnnxSpeech2Text(out, beam_size=beam_size, ctc_weight=0.3)
    for utt, path in read_kaldi_table(tone_data / "train" / "wav.scp").items():
        speech, _ = soundfile.read(path, dtype="float32")
        text, tokens, token_ids, hyp = reference(speech)[0]
        got = runtime(speech)
        assert got[:3] == (text, tokens, token_ids), utt
        assert got[3] == pytest.approx(float(hyp.score), abs=1e-4), utt


@pytest.mark.end_to_end  # reads the trained tone experiment
def test_onnx_decode_runs_with_torch_and_espnet_blocked(exported, tone_data, tmp_path):
    out, _ = exported
    output = tmp_path / "text"
    script = BLOCKED_IMPORTS + (
        "from espnet_lrsms.bin.onnx_decode import main\n"
        f"main(['--model_dir', {str(out)!r}, '--wav_scp', {str(tone_data / 'train' / 'wav.scp')!r},\n"
        f"      '--output', {str(output)!r}])\n"  # meta.yaml's beam 8, ctc_weight 0.3
        "main([*sys.argv[1:]])\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'espnet', 'espnet2')]\n"
    )
    args = ["--model_dir", str(out), "--wav_scp", str(tone_data / "train" / "wav.scp"), "--output",
            str(tmp_path / "text_int8"), "--int8", "--beam_size", "4", "--ctc_weight", "0.3"]
    result = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == [f"decoded 16 utterances into {output}",
                                          f"decoded 16 utterances into {tmp_path / 'text_int8'}"]
    from espnet_lrsms.fileio import read_kaldi_table
    from espnet_lrsms.deploy.onnx_runtime import OnnxSpeech2Text
    import soundfile

    runtime = OnnxSpeech2Text(out, beam_size=8, ctc_weight=0.3)
    wavs = read_kaldi_table(tone_data / "train" / "wav.scp")
    expected = {utt: runtime(soundfile.read(path, dtype="float32")[0])[0] for utt, path in wavs.items()}
    assert read_kaldi_table(output) == expected
    assert read_kaldi_table(tmp_path / "text_int8").keys() == expected.keys()


@pytest.mark.parametrize("token_type", ["char", "bpe"])
def test_runtime_equals_speech2text_on_the_long_hypotheses_of_an_untrained_model(tone_data, tmp_path, token_type):
    """Random weights (the tiny config, no training) give 20-30 token hypotheses: many search steps, end
    detection, and a pre-beam (3 of 12 tokens at beam 2) that changes the best hypothesis of some utterances,
    each compared with ESPnet's Speech2Text; with a SentencePiece model (copied into the export) for bpe."""
    import sentencepiece
    import soundfile
    from espnet2.bin.asr_inference import Speech2Text

    from espnet_lrsms.asr.task import LowRankASRTask
    from espnet_lrsms.deploy.onnx_export import export_experiment
    from espnet_lrsms.deploy.onnx_runtime import OnnxSpeech2Text
    from espnet_lrsms.fileio import read_kaldi_table

    from asr_test_data import TINY, experiment

    overrides = {"token_type": "char"}
    if token_type == "bpe":
        text = tmp_path / "train.txt"
        text.write_text("".join(line.split(maxsplit=1)[1] + "\n" for line in (tone_data / "train" / "text").open()))
        sentencepiece.SentencePieceTrainer.train(input=str(text), model_prefix=str(tmp_path / "bpe"), vocab_size=12,
                                                 model_type="unigram", character_coverage=1.0, minloglevel=2)
        pieces = [line.split("\t")[0] for line in (tmp_path / "bpe.vocab").read_text().splitlines()][3:]
        overrides = {"token_type": "bpe", "bpemodel": str(tmp_path / "bpe.model"),
                     "token_list": ["<blank>", "<unk>", *pieces, "<sos/eos>"]}
        assert len(overrides["token_list"]) == 12
    exp, _ = experiment(LowRankASRTask, TINY, tmp_path / "exp", vocab_size=12, **overrides)
    files = export_experiment(exp, "model.pth", tmp_path / "onnx")
    assert (tmp_path / "onnx" / "bpe.model").is_file() == (token_type == "bpe")
    if token_type == "char":
        assert_factorized_layers_kept(tmp_path / "onnx", load_asr_experiment(exp, "model.pth")[0],
                                      {"encoder": 18, "decoder": 10})
    meta = yaml.safe_load(files["meta"].read_text())
    assert meta["decoding"] == {"beam_size": 20, "ctc_weight": 0.5, "penalty": 0.0, "maxlenratio": 0.0,
                                "minlenratio": 0.0, "nbest": 1}  # no decoding config: Speech2Text's defaults
    reference = Speech2Text(asr_train_config=str(exp / "config.yaml"), asr_model_file=str(exp / "model.pth"),
                            beam_size=2, ctc_weight=0.3)
    runtime = OnnxSpeech2Text(files["meta"].parent, beam_size=2, ctc_weight=0.3)
    lengths = []
    for utt, path in list(read_kaldi_table(tone_data / "train" / "wav.scp").items())[:8]:
        speech, _ = soundfile.read(path, dtype="float32")
        text, tokens, token_ids, hyp = reference(speech)[0]
        got = runtime(speech)
        assert got[:3] == (text, tokens, token_ids), utt
        assert got[3] == pytest.approx(float(hyp.score), abs=1e-4), utt
        lengths.append(len(token_ids))
    assert min(lengths) >= 10


def test_stft_frontend_exports_and_equals_pytorch_at_unseen_lengths(tmp_path):
    """The fbank demo config (ESPnet's DefaultFrontend + GlobalMVN), untrained: its complex STFT is exported as a
    DFT convolution; encoder output and CTC log-probs equal PyTorch's at two lengths not traced."""
    from espnet_lrsms.asr.task import LowRankASRTask
    from espnet_lrsms.deploy.onnx_export import export_experiment

    from asr_test_data import experiment

    rng = np.random.default_rng(0)
    stats = tmp_path / "feats_stats.npz"
    np.savez(stats, count=np.array(1000.0), sum=1000 * rng.normal(size=20), sum_square=1000 * (2 + rng.normal(size=20) ** 2))
    exp, _ = experiment(LowRankASRTask, REPO / "conf" / "demo" / "train_asr_lrsms_tiny_fbank.yaml", tmp_path / "exp",
                        vocab_size=12, token_type="char", normalize_conf={"stats_file": str(stats)})
    files = export_experiment(exp, "model.pth", tmp_path / "onnx")
    model, _ = load_asr_experiment(exp, "model.pth")
    assert type(model.frontend.stft).__name__ == "Stft"
    encoder = session(files["encoder"])
    generator = torch.Generator().manual_seed(1)
    for samples in (17_999, 53_123):
        speech = 0.1 * torch.randn(1, samples, generator=generator)
        lengths = torch.tensor([samples])
        with torch.no_grad():
            reference, _ = model.encode(speech, lengths)
            reference_logp = model.ctc.log_softmax(reference)
        encoder_out, _, logp = encoder.run(None, {"speech": speech.numpy(), "speech_lengths": lengths.numpy()})
        assert encoder_out.shape == tuple(reference.shape) == (1, (samples // 160 // 2 - 1) // 2, 64)  # 10 ms frames, Conv2dSubsampling
        np.testing.assert_allclose(encoder_out, reference.numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(logp, reference_logp.numpy(), atol=1e-4, rtol=0)
