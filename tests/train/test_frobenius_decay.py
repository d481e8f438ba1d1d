"""Frobenius decay (``lowrank.frobenius_decay``): the gradient of ‖U·Vᵀ‖²_F/2, applied decoupled before each
step, with the optimizer's own weight decay off for U and Vᵀ only."""
import pytest
import torch
import yaml
from torch import nn

from espnet_lrsms.lowrank import FactorizedLinear, LowRankConfig, LowRankConfigError, frobenius_decay_grads
from espnet_lrsms.train.frobenius_decay import FrobeniusDecay, decay_attached, use_frobenius_decay
from espnet_lrsms.train.step_hooks import TrainingRun, step_hooks
from espnet_lrsms.train.build import dummy_token_list

from asr_test_data import TINY_ASR


def test_grads_equal_autograds_of_the_penalty():
    torch.manual_seed(0)
    u = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    vt = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    (0.5 * (u @ vt).pow(2).sum()).backward()
    grad_u, grad_vt = frobenius_decay_grads(u.detach(), vt.detach())
    torch.testing.assert_close(grad_u, u.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad_vt, vt.grad, rtol=1e-12, atol=1e-12)


class Owner(nn.Module):
    def __init__(self, decay):
        super().__init__()
        self.low, self.dense = FactorizedLinear(6, 4, 2), nn.Linear(4, 3)
        self.lowrank_config = LowRankConfig.from_dict({"ffn": 0.5, "frobenius_decay": decay})

    def forward(self, x):
        return self.dense(self.low(x))


@pytest.mark.parametrize("with_grad", [False, True])
def test_one_adamw_step_decays_the_product_and_leaves_the_factors_out_of_weight_decay(with_grad):
    torch.manual_seed(0)
    lr, wd, lam = 0.01, 0.05, 0.3
    model = Owner(lam)
    reference = Owner(lam)
    reference.load_state_dict(model.state_dict())
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    assert use_frobenius_decay(model, optimizer) == 1
    factors = {id(model.low.u), id(model.low.vt)}
    for group in optimizer.param_groups:
        ids = {id(p) for p in group["params"]}
        assert group["weight_decay"] == (0.0 if ids == factors else wd) and (ids == factors or not ids & factors)
    x = torch.randn(5, 6)
    if with_grad:
        model(x).sum().backward()
        reference(x).sum().backward()
    optimizer.step()
    # the same step by hand: decay from the weights before the step, then AdamW (its decay off for U, Vᵀ)
    with torch.no_grad():
        grad_u, grad_vt = frobenius_decay_grads(reference.low.u, reference.low.vt)
        reference.low.u -= lr * lam * grad_u
        reference.low.vt -= lr * lam * grad_vt
    by_hand = torch.optim.AdamW([{"params": [reference.low.u, reference.low.vt], "weight_decay": 0.0},
                                 {"params": [reference.low.bias, *reference.dense.parameters()]}], lr=lr, weight_decay=wd)
    by_hand.step()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, reference.state_dict()[name], rtol=0, atol=1e-7, msg=name)
    assert not torch.equal(model.low.u, Owner(lam).low.u)


def test_the_decay_is_a_step_hook_of_the_model_that_a_run_detaches():
    """use_frobenius_decay applies the decay at once (its optimizer decays outside a run too); the model's
    step hook is what the trainer attaches (again: nothing more) and detaches at the end of the run."""
    torch.manual_seed(0)
    model = Owner(0.3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    assert not decay_attached(model.low)
    use_frobenius_decay(model, optimizer)
    (decay,) = step_hooks(model)
    assert isinstance(decay, FrobeniusDecay) and decay_attached(model.low)
    run = TrainingRun(model)

    def decays() -> bool:  # a step without gradients moves U only through the decay
        before = model.low.u.detach().clone()
        optimizer.step()
        return not torch.equal(model.low.u, before)

    decay.attach([optimizer], run)  # already attached: registered once
    assert len(optimizer._optimizer_step_pre_hooks) == 1 and decays()
    decay.detach(run, completed=True)
    assert not decay_attached(model.low) and not decays()
    decay.attach([optimizer], run)
    assert decay_attached(model.low) and decays()


def test_without_it_nothing_changes():
    model = Owner(0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.05)
    assert use_frobenius_decay(model, optimizer) == 0 and len(optimizer.param_groups) == 1
    assert step_hooks(model) == [] and not decay_attached(model.low)


@pytest.mark.parametrize("value", [-1.0, "big", True, float("inf")])
def test_a_bad_coefficient_is_named(value):
    with pytest.raises(LowRankConfigError, match=r"encoder_conf.lowrank.frobenius_decay: expected a number >= 0"):
        LowRankConfig.from_dict({"ffn": 0.5, "frobenius_decay": value}, "encoder_conf.lowrank")


def test_the_asr_task_gives_the_encoders_factors_frobenius_decay(tmp_path):
    from espnet_lrsms.asr.task import LowRankASRTask

    conf = yaml.safe_load(TINY_ASR.read_text())
    conf["encoder_conf"]["lowrank"]["frobenius_decay"] = 1e-3
    (tmp_path / "fd.yaml").write_text(yaml.safe_dump(conf))
    args = LowRankASRTask.get_parser().parse_args(
        ["--config", str(tmp_path / "fd.yaml"), "--token_list", "x", "--num_iters_per_epoch", "10"])
    args.token_list = dummy_token_list(12)
    model = LowRankASRTask.build_model(args)
    optimizer = LowRankASRTask.build_optimizers(args, model)[0]
    encoder_factors = {id(p) for m in model.encoder.modules() if isinstance(m, FactorizedLinear) for p in (m.u, m.vt)}
    assert encoder_factors
    assert {id(p) for p in optimizer.param_groups[-1]["params"]} == encoder_factors
    assert optimizer.param_groups[-1]["weight_decay"] == 0.0
