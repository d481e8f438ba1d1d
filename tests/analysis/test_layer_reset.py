"""Layer-reset ablation: exact resets on toy state dicts, then the command on the trained demo model."""
import csv

import pytest
import torch
import yaml

from espnet_lrsms.analysis.layer_reset import (
    ResetTarget,
    ambient_blocks,
    classify,
    critical_blocks,
    rerandom_seed,
    reset_state,
    reset_targets,
    write_random_init,
)
from espnet_lrsms.bin import analysis_layer_reset as cli
from espnet_lrsms.asr.task import LowRankASRTask
from espnet_lrsms.train.build import dummy_token_list

from conftest import DECODE, LIBRI_RECIPE, REPO, TAG


def toy_state():
    state = {}
    for b in range(3):
        state[f"encoder.encoders.{b}.self_attn.linear_q.u"] = torch.full((4, 2), float(b))
        state[f"encoder.encoders.{b}.self_attn.linear_q.vt"] = torch.full((2, 4), float(b))
        state[f"encoder.encoders.{b}.conv_module.norm.running_mean"] = torch.full((4,), float(b))
        state[f"encoder.encoders.{b}.norm_ff.weight"] = torch.ones(4)
    state["encoder.embed.out.0.weight"] = torch.zeros(4, 4)
    state["decoder.decoders.0.src_attn.linear_k.weight"] = torch.zeros(4, 4)
    return state


def test_targets_are_the_blocks_or_their_modules_in_model_order():
    state = toy_state()
    assert [t.name for t in reset_targets(state, "encoder", "block")] == ["encoder.0", "encoder.1", "encoder.2"]
    modules = reset_targets(state, "encoder", "module")
    assert [t.name for t in modules[:3]] == ["encoder.0.self_attn", "encoder.0.conv_module", "encoder.0.norm_ff"]
    assert len(modules) == 9
    assert [t.prefix for t in reset_targets(state, "decoder", "block")] == ["decoder.decoders.0."]
    with pytest.raises(ValueError, match="no encoder blocks"):
        reset_targets({"decoder.decoders.0.x.weight": torch.zeros(1)}, "encoder", "block")


def test_reset_replaces_exactly_the_targets_entries_factors_and_buffers_included():
    trained = toy_state()
    source = {k: v + 100 for k, v in trained.items()}
    out = reset_state(trained, source, ResetTarget("encoder", 1), "initial")
    changed = sorted(k for k in trained if not torch.equal(out[k], trained[k]))
    assert changed == sorted(k for k in trained if k.startswith("encoder.encoders.1."))
    assert len(changed) == 4  # u, vt, the BatchNorm running mean and the layer norm
    assert torch.equal(out["encoder.encoders.1.self_attn.linear_q.u"], source["encoder.encoders.1.self_attn.linear_q.u"])
    one_module = reset_state(trained, source, ResetTarget("encoder", 2, "self_attn"), "initial")
    assert sorted(k for k in trained if not torch.equal(one_module[k], trained[k])) == [
        "encoder.encoders.2.self_attn.linear_q.u", "encoder.encoders.2.self_attn.linear_q.vt"]
    assert torch.equal(trained["encoder.encoders.1.self_attn.linear_q.u"], torch.full((4, 2), 1.0))  # input untouched

    del source["encoder.encoders.0.norm_ff.weight"]
    with pytest.raises(ValueError, match=r"initial: has no encoder\.encoders\.0\.norm_ff\.weight"):
        reset_state(trained, source, ResetTarget("encoder", 0), "initial")
    source["encoder.encoders.0.norm_ff.weight"] = torch.ones(5)
    with pytest.raises(ValueError, match=r"norm_ff\.weight has shape \(5,\), the trained model \(4,\)"):
        reset_state(trained, source, ResetTarget("encoder", 0), "initial")


def test_ambient_or_critical_by_absolute_or_relative_rise():
    assert classify(11.0, 10.0, 1.0, "absolute") == "ambient"
    assert classify(11.5, 10.0, 1.0, "absolute") == "critical"
    assert classify(9.0, 10.0, 0.0, "absolute") == "ambient"  # a reset that helps is ambient
    assert classify(11.0, 10.0, 0.1, "relative") == "ambient"
    assert classify(11.5, 10.0, 0.1, "relative") == "critical"
    assert classify(0.0, 0.0, 0.1, "relative") == "ambient"
    assert classify(1.0, 0.0, 0.1, "relative") == "critical"
    rows = [dict(mode="reinit", module="(all)", block=b, wer_increase=inc, **{"class": c})
            for b, inc, c in ((0, 0.5, "ambient"), (1, 9.0, "critical"), (2, -1.0, "ambient"))]
    assert ambient_blocks(rows, "reinit") == [2, 0]
    rows += [dict(rows[1], block=3, wer_increase=12.0), dict(rows[1], block=4, wer_increase=9.0)]
    assert critical_blocks(rows, "reinit") == [3, 1, 4]  # most critical first, ties by block


def test_rerandom_is_not_the_initial_weights_of_a_seed_1_model(tmp_path):
    """ESPnet seeds the init with the config's seed: rerandom with that seed rebuilds W(0) exactly, so the
    default is the training seed + 1."""
    from espnet2.torch_utils.set_all_random_seed import set_all_random_seed

    parser = LowRankASRTask.get_parser()
    args = parser.parse_args(["--config", str(REPO / "conf" / "demo" / "train_asr_lrsms_tiny.yaml"),
                              "--token_list", "x", "--output_dir", str(tmp_path), "--seed", "1"])
    args.token_list = dummy_token_list(12)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(vars(args)))
    set_all_random_seed(1)  # as AbsTask.main_worker before build_model
    initial = LowRankASRTask.build_model(args).state_dict()
    assert rerandom_seed(config) == (2, 1) and rerandom_seed(config, 7) == (7, 1)
    rerandom = torch.load(write_random_init(config, 2, tmp_path / "r2.pth"))
    same_seed = torch.load(write_random_init(config, 1, tmp_path / "r1.pth"))
    blocks = [k for k in initial if k.startswith("encoder.encoders.") and k.endswith(("weight", ".u", ".vt"))
              and "norm" not in k]
    assert len(blocks) > 10
    assert all(torch.equal(same_seed[k], initial[k]) for k in initial)  # the trap the default avoids
    assert not any(torch.equal(rerandom[k], initial[k]) for k in blocks)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.end_to_end
def test_ablation_on_the_trained_demo_model(librispeech_demo, tmp_path, capsys):
    """Known answers on a real model: a block whose 'initial' weights are its trained ones is ambient
    with exactly the trained WER; re-randomising the blocks of the trained encoder costs WER; the
    trained model decodes exactly as the recipe's stage 12 did."""
    work, _ = librispeech_demo
    exp = work / "exp" / f"asr_{TAG}"
    trained = torch.load(exp / "valid.acc.best.pth", map_location="cpu")
    initial = torch.load(exp / "0epoch.pth", map_location="cpu")
    planted = tmp_path / "planted_exp"
    planted.mkdir()
    (planted / "config.yaml").symlink_to(exp / "config.yaml")
    (planted / "model.pth").symlink_to(exp / "valid.acc.best.pth")
    # block 0 "never moved" from its init: its initial weights are the trained ones
    torch.save({k: (trained[k] if k.startswith("encoder.encoders.0.") else v) for k, v in initial.items()},
               planted / "0epoch.pth")

    cli.main([
        "--exp_dir", str(planted), "--checkpoint", "model.pth", "--data_dir", str(work / "data" / "dev_clean"),
        "--decode_config", str(LIBRI_RECIPE / "conf" / "demo" / "decode_asr_tiny.yaml"),
        "--threshold", "0", "--nj", "2", "--output_dir", str(tmp_path / "out"),
    ])
    out = capsys.readouterr().out
    rows = read_rows(tmp_path / "out" / "layer_reset.csv")
    assert [(r["mode"], r["block"]) for r in rows] == [
        ("none", ""), ("reinit", "0"), ("reinit", "1"), ("rerandom", "0"), ("rerandom", "1")]
    base = float(rows[0]["wer"])
    reinit_0 = rows[1]
    assert float(reinit_0["wer"]) == base and reinit_0["class"] == "ambient"
    assert (tmp_path / "out" / "hyps" / "reinit_encoder.0" / "text").read_text() == \
        (tmp_path / "out" / "hyps" / "trained" / "text").read_text()
    rises = [float(r["wer_increase"]) for r in rows if r["mode"] == "rerandom"]
    assert max(rises) > 5.0, rows  # a random block in place of a trained one costs the 2-block encoder
    assert "ambient encoder blocks (reinit), most ambient first: [0" in out
    assert (tmp_path / "out" / "layer_reset.png").stat().st_size > 10_000
    assert (tmp_path / "out" / "rerandom_seed1.pth").is_file()  # the demo trained with ESPnet's default seed 0
    assert "rerandom: random weights drawn with seed 1; the experiment trained with seed 0" in out
    # the ablation's decoder is the recipe's: same hypotheses as stage 12's 1-best
    stage5 = (exp / DECODE / "dev_clean" / "1best_recog" / "text").read_text().split("\n")
    ours = (tmp_path / "out" / "hyps" / "trained" / "text").read_text().split("\n")
    assert [line.rstrip() for line in ours] == [line.rstrip() for line in stage5]


def test_reinit_without_initial_weights_is_explained(tmp_path):
    exp = tmp_path / "exp"
    data = tmp_path / "data"
    exp.mkdir()
    data.mkdir()
    for path in (exp / "config.yaml", exp / "valid.acc.ave.pth", data / "wav.scp", data / "text"):
        path.write_text("")
    torch.save({"encoder.encoders.0.norm_ff.weight": torch.ones(2)}, exp / "valid.acc.ave.pth")
    with pytest.raises(SystemExit, match="reinit needs the initial weights .*0epoch.pth"):
        cli.main(["--exp_dir", str(exp), "--data_dir", str(data), "--modes", "reinit"])
    with pytest.raises(SystemExit, match="--data_dir: no such file .*nowhere/wav.scp"):
        cli.main(["--exp_dir", str(exp), "--data_dir", str(tmp_path / "nowhere")])
