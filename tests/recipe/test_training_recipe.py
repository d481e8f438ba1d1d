"""The paper's training recipe as ESPnet components: scheduler and adaptive time masking."""
import pytest
import torch

import espnet_lrsms  # noqa: F401  (registers)
from espnet_lrsms.asr.resnet1d_frontend import ResNet1DFrontend
from espnet_lrsms.train.schedulers import WarmupConstantSqrtCooldownLR
from espnet_lrsms.asr.time_mask import AdaptiveTimeMask


def _lrs(steps, **conf):
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=6e-4)
    sched = WarmupConstantSqrtCooldownLR(opt, **conf)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_warmup_constant_sqrt_cooldown_shape():
    lrs = _lrs(75, warmup_steps=5, cooldown_steps=15, total_steps=75)
    assert lrs[0] == pytest.approx(6e-4 / 5)
    assert lrs[4] == pytest.approx(6e-4)
    assert lrs[5:60] == pytest.approx([6e-4] * 55)
    assert lrs[60] == pytest.approx(6e-4)  # cool-down starts at step 60
    assert lrs[60 + 4] == pytest.approx(6e-4 * (1 - (4 / 15) ** 0.5))
    assert lrs[74] == pytest.approx(6e-4 * (1 - (14 / 15) ** 0.5))


def test_epochs_are_converted_with_steps_per_epoch():
    by_epochs = _lrs(150, steps_per_epoch=2, warmup_epochs=5, cooldown_epochs=15, total_epochs=75)
    assert by_epochs == pytest.approx(_lrs(150, warmup_steps=10, cooldown_steps=30, total_steps=150))


def test_bad_scheduler_values_are_named():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="give total_steps"):
        WarmupConstantSqrtCooldownLR(opt)
    with pytest.raises(ValueError, match="warmup_steps=50, cooldown_steps=60, total_steps=100"):
        WarmupConstantSqrtCooldownLR(opt, warmup_steps=50, cooldown_steps=60, total_steps=100)


def test_registered_with_espnet():
    from espnet2.tasks.abs_task import scheduler_classes
    from espnet2.tasks.asr import specaug_choices

    assert scheduler_classes["warmup_constant_sqrt_cooldown"] is WarmupConstantSqrtCooldownLR
    assert specaug_choices.get_class("adaptive_time_mask") is AdaptiveTimeMask


def test_adaptive_time_mask_count_and_width():
    torch.manual_seed(0)
    mask = AdaptiveTimeMask(window=6400, stride=16000).train()
    wave = torch.ones(2, 80000)  # 5 s
    out, lengths = mask(wave, torch.tensor([80000, 32000]))
    assert lengths.tolist() == [80000, 32000]
    zeroed = (out == 0).sum(1)
    assert 0 < zeroed[0] <= 5 * 6399  # five masks of < 0.4 s on 5 s
    assert 0 <= zeroed[1] <= 2 * 6399  # two on the 2 s utterance
    assert out[1, 32000:].eq(1).all()  # padding untouched
    mask.eval()
    assert torch.equal(mask(wave, None)[0], wave)


def test_frontend_masks_the_waveform_only_in_training():
    torch.manual_seed(0)
    frontend = ResNet1DFrontend(channels=[8, 8, 8, 8], time_mask={"window": 6400, "stride": 16000})
    wave, lengths = torch.randn(1, 32000), torch.tensor([32000])
    frontend.eval()
    a, _ = frontend(wave, lengths)
    b, _ = frontend(wave, lengths)
    assert torch.equal(a, b)
    frontend.train()
    c, _ = frontend(wave, lengths)
    frontend.eval()
    assert not torch.allclose(frontend(wave, lengths)[0], c)
