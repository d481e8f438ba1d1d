"""The strategies' numbers without a training run: the configs' rank budgets, the dynamic schedule's
checks, the warm-up truncation (the best rank-r approximation of the update) and the effect of
AdaLoRA's orthogonality penalty over real optimizer steps of the tiny LM."""
import argparse

import pytest
import torch
import yaml

from espnet_lrsms.lm.adapters import ADAPTER_NAME, TargetLayer, lora_layers, planned_ranks
from espnet_lrsms.lm.lora_config import LoRAConfig, LoRAConfigError
from espnet_lrsms.lm.strategies import (
    RANKS_FILE,
    LoRAStrategy,
    lora_strategy,
    orthogonality_penalty,
    truncate_lora_factors,
)
from espnet_lrsms.train.step_hooks import TrainingRun, step_hooks

from conftest import REPO

CONF = REPO / "conf" / "lm"
STRATEGIES = ("vanilla", "dynamic", "warmup", "mixed")


def lm_targets(lm_config):
    """The adapted linears of the Transformer LM that ``lm_config`` describes (every block's q, k, v, out, w_1, w_2)."""
    conf = yaml.safe_load(lm_config.read_text())["lm_conf"]
    att, ffn = conf["att_unit"], conf["unit"]
    shapes = {"linear_q": (att, att), "linear_k": (att, att), "linear_v": (att, att), "linear_out": (att, att),
              "w_1": (att, ffn), "w_2": (ffn, att)}
    return [TargetLayer(f"lm.encoder.encoders.{b}.{kind}", kind, b, m, n)
            for b in range(conf["layer"]) for kind, (m, n) in shapes.items()]


def final_budget(config_file, targets):
    """(total rank, adapter parameters) at the end of training; dynamic: the total rank only."""
    config = LoRAConfig.from_dict(yaml.safe_load(config_file.read_text())["lora_conf"])
    if config.strategy == "mixed":
        ranks = planned_ranks(config, targets)
    else:
        ranks = {t.name: config.rank for t in targets}
    params = None if config.strategy == "dynamic" else sum(r * (t.in_features + t.out_features) for t, r in zip(targets, ranks.values()))
    return sum(ranks.values()), params


@pytest.mark.parametrize("size", ("full", "demo"))
def test_the_four_strategies_end_on_one_budget(size):
    lm_config = CONF / "train_lm_transformer.yaml" if size == "full" else CONF / "demo" / "train_lm_transformer_tiny.yaml"
    targets = lm_targets(lm_config)
    budgets = {s: final_budget(CONF / f"lora_{s}.yaml" if size == "full" else CONF / "demo" / f"lora_{s}_tiny.yaml", targets)
               for s in STRATEGIES}
    if size == "full":  # 16 blocks x 6 linears at rank 8: 768; 16 x 8 x (4 x 1024 + 2 x 2560) parameters
        assert {s: b[0] for s, b in budgets.items()} == dict.fromkeys(STRATEGIES, 768)
        assert {s: budgets[s][1] for s in ("vanilla", "warmup", "mixed")} == dict.fromkeys(("vanilla", "warmup", "mixed"), 1_179_648)
    else:  # 2 blocks x 6 linears at rank 4; the tiny mixed schedule matches the rank, not the parameters
        assert {s: b[0] for s, b in budgets.items()} == dict.fromkeys(STRATEGIES, 48)
        assert budgets["vanilla"][1] == 9216 and budgets["mixed"][1] == 9984


def tiny_adapted_lm(lora_conf, seed=0):
    """The demo LM (random weights, 6 tokens) with adapters; its strategy is ``lora_strategy(model)``."""
    from espnet_lrsms.lm.task import LoRALMTask

    conf = yaml.safe_load((CONF / "demo" / "train_lm_transformer_tiny.yaml").read_text())
    args = argparse.Namespace(**conf, token_list=["<blank>", "<unk>", "a", "b", "c", "<sos/eos>"], init=None, model_conf={})
    torch.manual_seed(seed)
    return LoRALMTask.build_adapted_model(args, LoRAConfig.from_dict(lora_conf), base_lm_file=None, loading=True)


DYNAMIC = {"strategy": "dynamic", "rank": 2, "init_rank": 4, "tinit": 1, "tfinal": 2, "delta_t": 1}


def test_an_explicit_total_step_beyond_the_run_fails():
    model = tiny_adapted_lm({**DYNAMIC, "total_step": 100})
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])
    with pytest.raises(LoRAConfigError, match=r"total_step=100 is more than the 50 optimizer steps of this run.*step 98 would never"):
        lora_strategy(model).install(optimizer, total_steps=50)
    lora_strategy(model).install(optimizer, total_steps=100)  # a run that long is fine
    assert lora_strategy(model).total_steps == 100


def training_run(model, output_dir, keep_nbest_models=1, dist_rank=None):
    """A run of 2 epochs of 10 batches, one optimizer step each; ``dist_rank``: that rank of a DDP run."""
    options = argparse.Namespace(keep_nbest_models=keep_nbest_models, max_epoch=2, accum_grad=1, output_dir=output_dir)
    distributed = argparse.Namespace(distributed=dist_rank is not None, dist_rank=dist_rank or 0)
    return TrainingRun(model, argparse.Namespace(num_iters_per_epoch=10), options, distributed)


def test_the_strategy_is_the_models_step_hook_attached_for_a_run(tmp_path):
    model = tiny_adapted_lm({"strategy": "vanilla", "rank": 2})
    strategy = lora_strategy(model)
    assert isinstance(strategy, LoRAStrategy) and step_hooks(model) == [strategy]
    assert "lora_strategy" not in vars(model)  # nothing parked on the model by that name
    assert lora_strategy(torch.nn.Linear(2, 2)) is None
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])
    for rank, completed, written in ((None, False, False), (1, True, False), (0, True, True)):
        run = training_run(model, tmp_path, dist_rank=rank)
        strategy.attach([optimizer], run)
        assert strategy.total_steps == 20 and optimizer._optimizer_step_post_hooks  # the counted optimizer steps
        strategy.detach(run, completed)
        assert not optimizer._optimizer_step_post_hooks
        assert (tmp_path / RANKS_FILE).is_file() == written  # only a completed run writes, on rank 0 only


@pytest.mark.parametrize("strategy", ["warmup", "dynamic"])
def test_a_rank_changing_strategy_refuses_averaging_epochs(strategy, tmp_path):
    conf = {"warmup": {"strategy": "warmup", "warmup_rank": 4, "rank": 2, "truncate_step": 5}, "dynamic": DYNAMIC}
    model = tiny_adapted_lm(conf[strategy])
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])
    run = training_run(model, tmp_path, keep_nbest_models=[3, 1])
    with pytest.raises(LoRAConfigError, match=rf"strategy={strategy} changes the adapters' ranks.*keep_nbest_models: 3"):
        lora_strategy(model).attach([optimizer], run)
    assert not optimizer._optimizer_step_post_hooks


def test_warmup_truncation_is_the_best_rank_r_approximation_of_the_update():
    model = tiny_adapted_lm({"strategy": "warmup", "warmup_rank": 8, "rank": 3, "alpha": 8, "truncate_step": 5})
    layer = next(iter(lora_layers(model).values()))
    torch.manual_seed(1)
    with torch.no_grad():
        layer.lora_A[ADAPTER_NAME].weight.normal_()
        layer.lora_B[ADAPTER_NAME].weight.normal_()
    update = layer.scaling[ADAPTER_NAME] * layer.lora_B[ADAPTER_NAME].weight @ layer.lora_A[ADAPTER_NAME].weight
    old_first_three = (layer.scaling[ADAPTER_NAME] * layer.lora_B[ADAPTER_NAME].weight[:, :3] @ layer.lora_A[ADAPTER_NAME].weight[:3]).detach().double()
    u, s, vh = torch.linalg.svd(update.detach().double())
    best = (u[:, :3] * s[:3]) @ vh[:3]
    x = torch.randn(5, layer.in_features)
    base = layer.get_base_layer()(x)
    truncate_lora_factors(layer, 3)
    assert layer.lora_A[ADAPTER_NAME].weight.shape == (3, layer.in_features) and layer.r[ADAPTER_NAME] == 3
    assert layer.scaling[ADAPTER_NAME] == 8 / 3
    new = layer.scaling[ADAPTER_NAME] * layer.lora_B[ADAPTER_NAME].weight @ layer.lora_A[ADAPTER_NAME].weight
    torch.testing.assert_close(new.double(), best, rtol=0, atol=1e-4)
    # Eckart-Young: the error is the norm of the dropped singular values, below that of any other rank-3 cut
    error = torch.linalg.matrix_norm(update.double() - new.double())
    assert error.item() == pytest.approx(s[3:].norm().item(), rel=1e-5)
    assert error < torch.linalg.matrix_norm(update.double() - old_first_three)  # e.g. keeping 3 of B·A's 8 terms
    with torch.no_grad():  # and PEFT's forward now adds exactly that update
        torch.testing.assert_close(layer(x), base + x @ new.T, rtol=1e-5, atol=1e-5)


def train_dynamic(orth_reg_weight, steps=8):
    """``steps`` Adam steps of the tiny LM with dynamic adapters on a fixed batch; returns (model, penalty)."""
    model = tiny_adapted_lm({**DYNAMIC, "tinit": 50, "tfinal": 10, "orth_reg_weight": orth_reg_weight})
    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.05)
    lora_strategy(model).install(optimizer, total_steps=100)
    generator = torch.Generator().manual_seed(0)
    text = torch.randint(2, 5, (4, 6), generator=generator)
    lengths = torch.tensor([6, 5, 4, 6])
    for _ in range(steps):
        torch.manual_seed(int(model.lora_optimizer_steps))  # the same dropout masks in both runs
        loss, _, _ = model(text, lengths)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    lora_strategy(model).remove()
    with torch.no_grad():
        return model, orthogonality_penalty(model).item()


def test_the_orthogonality_penalty_changes_training():
    with_penalty, p_with = train_dynamic(orth_reg_weight=1.0)
    without, p_without = train_dynamic(orth_reg_weight=0.0)
    assert int(with_penalty.lora_optimizer_steps) == int(without.lora_optimizer_steps) == 8
    a, b = with_penalty.state_dict(), without.state_dict()
    changed = [k for k in a if "lora_A" in k or "lora_B" in k if not torch.equal(a[k], b[k])]
    assert len(changed) == 2 * len(lora_layers(without))  # every P and Q moved differently
    assert p_with < p_without  # and the penalty pulled them towards orthogonality


def test_the_orthogonality_penalty_is_part_of_the_training_loss():
    """Issue 24 item 12: the loss ESPnet's trainer sees (the model's forward) is the LM loss plus
    w·penalty, as PEFT's AdaLoraModel.forward adds it; so backward gives d(loss + w·penalty) before
    ESPnet clips, and the logged loss includes it. The optimizer step adds nothing more."""
    weight = 0.5
    model = tiny_adapted_lm({**DYNAMIC, "tinit": 50, "tfinal": 10, "orth_reg_weight": weight})
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.0)
    lora_strategy(model).install(optimizer, total_steps=100)
    generator = torch.Generator().manual_seed(0)
    text = torch.randint(2, 5, (4, 6), generator=generator)
    lengths = torch.tensor([6, 5, 4, 6])
    with torch.no_grad():  # PEFT's init leaves P and Q random, far from orthogonal: a penalty worth seeing
        penalty = orthogonality_penalty(model)
    assert penalty.item() > 1.0

    torch.manual_seed(3)
    reference_nll, _, _ = model.forward(text, lengths)  # the bare forward: ESPnet's LM loss alone
    (reference_nll + weight * orthogonality_penalty(model)).sum().backward()
    expected = [p.grad.clone() for p in params]
    optimizer.zero_grad()

    torch.manual_seed(3)  # the same dropout masks
    loss, stats, _ = model(text, lengths)
    assert loss.item() == pytest.approx(reference_nll.item() + weight * penalty.item(), rel=1e-6)
    assert stats["loss"].item() == pytest.approx(loss.item(), rel=1e-6)  # what ESPnet's reporter logs
    assert stats["orth_penalty"].item() == pytest.approx(penalty.item(), rel=1e-6)
    loss.sum().backward()
    for p, g in zip(params, expected):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-7)
    clipped_norm = torch.nn.utils.clip_grad_norm_(params, float("inf"))  # what ESPnet clips and logs as grad_norm
    assert clipped_norm.item() == pytest.approx(torch.linalg.vector_norm(torch.stack([g.norm() for g in expected])).item(), rel=1e-5)
    optimizer.step()  # lr 0: the hooks run, the gradients stay d(loss + w·penalty)
    for p, g in zip(params, expected):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-7)

    model.eval()  # validation: the LM's loss alone, comparable across strategies
    with torch.no_grad():
        assert model(text, lengths)[0].item() == pytest.approx(model.forward(text, lengths)[0].item(), rel=1e-6)
    lora_strategy(model).remove()
    model.train()
    torch.manual_seed(3)
    with torch.no_grad():  # and outside a training run nothing is added
        assert model(text, lengths)[0].item() == pytest.approx(reference_nll.item(), rel=1e-6)
