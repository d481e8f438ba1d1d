"""Building a model from a YAML: training configs and experiments' config.yaml alike."""
import pytest
import yaml

from espnet_lrsms.asr.build import build_asr_model
from espnet_lrsms.train.build import factorized_layers, parameter_summary

from asr_test_data import TINY


def test_an_experiment_config_with_espnet_s_record_keys_builds_the_same_model(tmp_path):
    # ESPnet writes required/version/distributed into exp/*/config.yaml; its parser refuses them in --config
    conf = yaml.safe_load(TINY.read_text())
    recorded = tmp_path / "config.yaml"
    recorded.write_text(yaml.safe_dump({**conf, "required": ["output_dir", "token_list"], "version": "202511",
                                        "distributed": False}))
    counts = [parameter_summary(build_asr_model(path, vocab_size=12, device="meta"))["total"] for path in (TINY, recorded)]
    assert counts == [409_976, 409_976]


def test_a_key_that_is_no_option_is_refused_naming_file_and_key(tmp_path):
    conf = yaml.safe_load(TINY.read_text())
    conf["encoder_cnf"] = conf.pop("encoder_conf")
    bad = tmp_path / "typo.yaml"
    bad.write_text(yaml.safe_dump(conf))
    with pytest.raises(ValueError, match=rf"{bad}: not options of LowRankASRTask: encoder_cnf"):
        build_asr_model(bad, vocab_size=12, device="meta")


def test_explicit_schedule_forms_build_the_tiny_model_the_short_forms_build():
    """The demo's schedules written as {kind: ...}: the same rank per layer and the same 409,976 parameters."""
    conf = yaml.safe_load(TINY.read_text())
    explicit = {
        "encoder_conf": {**conf["encoder_conf"], "lowrank": {  # short: mhsa [0.25, 0.5], ffn [0.25, 0.5] over 2 blocks
            "mhsa": {"kind": "linear", "alpha_i": 0.25, "alpha_f": 0.5},
            "ffn": {"kind": "per_block", "values": [0.25, 0.375]},  # the α the linear schedule gives its 2 blocks
            "init": "svd"}},
        "decoder_conf": {**conf["decoder_conf"], "lowrank": {  # short: mhsa 0.4, ffn 0.5
            "mhsa": {"kind": "uniform", "alpha": 0.4},
            "ffn": {"kind": "uniform", "alpha": 0.5},
            "init": "svd"}},
    }
    models = [build_asr_model(TINY, vocab_size=12, device="meta", overrides=o) for o in (None, explicit)]
    ranks = [{name: layer.rank for name, layer in factorized_layers(m).items()} for m in models]
    assert ranks[0] == ranks[1]
    assert [ranks[0][f"encoder.encoders.{b}.feed_forward.w_1"] for b in (0, 1)] == [16, 24]  # 64 x 256: α 0.25, 0.375
    assert ranks[0]["decoder.decoders.0.src_attn.linear_q"] == 26  # round(0.4 * 64)
    assert [parameter_summary(m)["total"] for m in models] == [409_976, 409_976]
