"""``use_amp: true``: ESPnet runs the forward pass and the loss under autocast, in bfloat16 on GPUs that
support it. Here the same code runs under ``torch.autocast("cpu", dtype=torch.bfloat16)``: the tiny
LR-SMS model's step gives a loss close to float32's, the parameters stay float32, and what must be
float32 is (the spectral init's SVD, the Frobenius decay of the factors)."""
import copy

import pytest
import soundfile
import torch
import yaml

from espnet_lrsms.lowrank import FactorizedLinear, frobenius_decay_grads, materialize_spectral_init_
from espnet_lrsms.asr.task import LowRankASRTask
from espnet_lrsms.asr.build import build_asr_model
from espnet_lrsms.train.frobenius_decay import use_frobenius_decay

from asr_test_data import TINY

BF16 = dict(device_type="cpu", dtype=torch.bfloat16)
DECAY = 0.05


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    """The tiny demo config with Frobenius decay on both sub-models and no random draw in training."""
    conf = yaml.safe_load(TINY.read_text())
    for part in ("encoder_conf", "decoder_conf"):
        conf[part]["lowrank"]["frobenius_decay"] = DECAY
        conf[part].update(dropout_rate=0.0, positional_dropout_rate=0.0)
    conf["decoder_conf"].update(self_attention_dropout_rate=0.0, src_attention_dropout_rate=0.0)
    conf["frontend_conf"]["time_mask"] = None
    path = tmp_path_factory.mktemp("autocast") / "tiny.yaml"
    path.write_text(yaml.safe_dump(conf))
    return path


@pytest.fixture(scope="module")
def batch(tone_data):
    """Two tone utterances and their character ids (the tiny model's 12 tokens)."""
    waves, texts = [], []
    tokens = (tone_data / "tokens.txt").read_text().split()
    for line in (tone_data / "train" / "text").read_text().splitlines()[:2]:
        uid, text = line.split(maxsplit=1)
        wave, _ = soundfile.read(tone_data / "train" / "wav" / f"{uid}.wav", dtype="float32")
        waves.append(torch.from_numpy(wave))
        texts.append(torch.tensor([tokens.index(c if c != " " else "<space>") for c in text]))
    pad = lambda xs, value: torch.nn.utils.rnn.pad_sequence(xs, batch_first=True, padding_value=value)
    return {
        "speech": pad(waves, 0.0), "speech_lengths": torch.tensor([len(w) for w in waves]),
        "text": pad(texts, -1), "text_lengths": torch.tensor([len(t) for t in texts]),
    }


def step(model, batch, autocast: bool):
    """One training step as ESPnet's trainer takes it (forward and loss under autocast when ``use_amp``,
    backward and the AdamW step with Frobenius decay outside): the loss."""
    args = LowRankASRTask.get_parser().parse_args(["--config", str(TINY), "--token_list", "x", "--output_dir", "x"])
    optimizer = LowRankASRTask.build_model_optimizers(args, model)[0]
    model.train()
    with torch.autocast(**BF16, enabled=autocast):
        loss, _, _ = model(**batch)
    loss.backward()
    optimizer.step()
    return loss


def test_a_bf16_autocast_step_keeps_float32_parameters_and_the_float32_loss(config, batch):
    torch.manual_seed(0)
    model = build_asr_model(config, vocab_size=12)
    start, mixed = copy.deepcopy(model), copy.deepcopy(model)
    loss = step(model, batch, autocast=False)
    loss_bf16 = step(mixed, batch, autocast=True)
    assert torch.isfinite(loss_bf16)
    assert abs(loss_bf16.item() - loss.item()) < 0.02 * loss.item(), (loss_bf16.item(), loss.item())
    for name, p in mixed.named_parameters():
        assert p.dtype == torch.float32 and p.grad.dtype == torch.float32, name
        assert torch.isfinite(p).all(), name
    # AdamW's first step is about ±lr per entry: the bf16 step moves (almost) every entry the same way
    same, total = 0, 0
    for p, p_mixed, p_start in zip(model.parameters(), mixed.parameters(), start.parameters()):
        same += (torch.sign(p_mixed - p_start) == torch.sign(p - p_start)).sum().item()
        total += p.numel()
    assert same / total > 0.9, same / total


def test_frobenius_decay_is_float32_under_autocast():
    torch.manual_seed(0)
    u, vt = torch.randn(64, 16), torch.randn(16, 48)
    want = frobenius_decay_grads(u, vt)
    with torch.autocast(**BF16):
        got = frobenius_decay_grads(u, vt)
    for g, w in zip(got, want):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g, w, rtol=0, atol=0)


def test_the_decay_hook_steps_float32_factors_under_autocast(config):
    """The decay runs inside ``optimizer.step``: called under autocast too, it moves the factors as in float32."""
    torch.manual_seed(0)
    model = build_asr_model(config, vocab_size=12)
    mixed = copy.deepcopy(model)
    for m, autocast in ((model, False), (mixed, True)):
        optimizer = torch.optim.AdamW(m.parameters(), lr=0.01, weight_decay=0.0)
        assert use_frobenius_decay(m, optimizer) > 0
        with torch.autocast(**BF16, enabled=autocast):
            optimizer.step()  # no gradients: only the decay moves the factors
    for (name, want), got in zip(model.named_parameters(), mixed.parameters()):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=0, atol=0, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("how", ["materialize", "first forward"])
def test_the_spectral_init_under_autocast_equals_the_float32_one(config, batch, how):
    torch.manual_seed(0)
    model = build_asr_model(config, vocab_size=12, spectral_init=False)
    mixed = copy.deepcopy(model)
    materialize_spectral_init_(model)
    with torch.autocast(**BF16):
        if how == "materialize":
            materialize_spectral_init_(mixed)
        else:  # each layer computes its own when first called (encoder, decoder)
            with torch.no_grad():
                mixed.eval()(**batch)
    layers = [(n, m) for n, m in mixed.named_modules() if isinstance(m, FactorizedLinear)]
    assert layers and not any(m.spectral_init_pending for _, m in layers)
    want = dict(model.named_parameters())
    for name, p in mixed.named_parameters():
        assert p.dtype == torch.float32
        torch.testing.assert_close(p, want[name], rtol=0, atol=0, msg=lambda m: f"{name}: {m}")
