"""A pack of a low-rank model says in its meta.yaml that it needs espnet_lrsms, and loading a config
that names a component this installation lacks says which version to install."""
import os
import zipfile

import pytest
import torch
import yaml
from espnet2.main_funcs.pack_funcs import unpack

import espnet_lrsms
from espnet_lrsms.bin import pack
from espnet_lrsms.asr.task import LowRankASRTask

from asr_test_data import TINY_ASR, experiment


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    work = tmp_path_factory.mktemp("pack")
    exp, state = experiment(LowRankASRTask, TINY_ASR, work / "exp" / "asr_tiny")
    (exp / "RESULTS.md").write_text("# RESULTS\n")
    cwd = os.getcwd()
    os.chdir(work)  # as the recipe packs: paths below the working directory, stored relative
    try:
        assert pack.main([
            "asr", "--asr_train_config", "exp/asr_tiny/config.yaml", "--asr_model_file", "exp/asr_tiny/model.pth",
            "--option", "exp/asr_tiny/RESULTS.md", "--outpath", "exp/asr_tiny/model.zip",
        ]) == 0
    finally:
        os.chdir(cwd)
    return exp / "model.zip", state


def test_meta_yaml_records_the_package_version_and_components(packed):
    outpath, _ = packed
    with zipfile.ZipFile(outpath) as archive:
        meta = yaml.safe_load(archive.read("meta.yaml"))
        names = archive.namelist()
    version = espnet_lrsms.__version__
    assert meta["espnet_lrsms"] == version and meta["requires"] == [f"espnet-lrsms=={version}"]
    conf = yaml.safe_load(TINY_ASR.read_text())
    assert meta["espnet_lrsms_components"] == {
        k: conf[k] for k in ("frontend", "encoder", "decoder", "specaug", "scheduler")
        if conf.get(k) in ("resnet1d", "lowrank_conformer", "lowrank_transformer", "adaptive_time_mask",
                           "warmup_constant_sqrt_cooldown", "warmup_cosine")
    }
    assert {"encoder", "decoder", "frontend"} <= set(meta["espnet_lrsms_components"])
    assert meta["load"] == (f"this model needs espnet_lrsms {version}: pip install espnet-lrsms=={version} "
                            "and `import espnet_lrsms` before loading")
    assert "espnet" in meta and "files" in meta  # ESPnet's own keys stay
    assert {"meta.yaml", "exp/asr_tiny/config.yaml", "exp/asr_tiny/model.pth", "exp/asr_tiny/RESULTS.md"} == set(names)
    assert not list(outpath.parent.glob(".packing_*")) and not outpath.with_name("model.tmp.zip").exists()


def test_espnet_unpacks_it_and_the_model_loads(packed, tmp_path):
    outpath, state = packed
    files = unpack(outpath, tmp_path / "unpacked")
    assert files["asr_model_file"] == str(tmp_path / "unpacked" / "exp" / "asr_tiny" / "model.pth")
    model, _ = LowRankASRTask.build_model_from_file(files["asr_train_config"], files["asr_model_file"])
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], atol=0, rtol=0)


def test_a_component_this_installation_lacks_names_the_version_to_install(packed, tmp_path):
    outpath, _ = packed
    files = unpack(outpath, tmp_path / "unpacked")
    meta_path = tmp_path / "unpacked" / "meta.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    meta_path.write_text(yaml.safe_dump(dict(meta, espnet_lrsms="9.9.9")))  # a pack from a later version
    config = yaml.safe_load(open(files["asr_train_config"]))
    config["encoder"] = "lowrank_zipformer"
    with open(files["asr_train_config"], "w") as f:
        yaml.safe_dump(config, f)
    with pytest.raises(ValueError) as error:
        LowRankASRTask.build_model_from_file(files["asr_train_config"], files["asr_model_file"])
    assert str(error.value).startswith(f"{files['asr_train_config']}: --encoder must be one of")
    assert str(error.value).endswith(
        "--encoder lowrank_zipformer; this model needs espnet_lrsms 9.9.9: pip install espnet-lrsms==9.9.9 and "
        f"`import espnet_lrsms` before loading (installed: {espnet_lrsms.__version__})"
    )
