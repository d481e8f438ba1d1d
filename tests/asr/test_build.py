"""Building a model from a YAML: training configs and experiments' config.yaml alike."""
import pytest
import yaml

from espnet_lrsms.asr.build import build_asr_model
from espnet_lrsms.train.build import parameter_summary

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
