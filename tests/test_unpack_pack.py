"""A pack whose member names or meta.yaml paths point outside the unpack folder is refused before anything
is extracted, naming the pack and the member or key (``AVSRSpeech2Text.from_pack``, the ASR side's
:func:`unpack_model`); a real pack, its paths stored relative or absolute, unpacks inside the folder."""
import io
import os
import tarfile
import zipfile

import pytest
import torch
import yaml

from espnet_lrsms.bin import pack
from espnet_lrsms.asr.task import LowRankASRTask
from espnet_lrsms.avsr.inference import AVSRSpeech2Text

from asr_test_data import TINY_ASR, experiment

CONFIG = yaml.safe_dump({"encoder": "lowrank_conformer"})


def _zip(path, meta, members):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("meta.yaml", yaml.safe_dump(meta))
        for name in members:
            archive.writestr(zipfile.ZipInfo(name), CONFIG)  # ZipInfo keeps the name as given ("/", "..")
    return path


def _meta(config, model="exp/model.pth"):
    return {"yaml_files": {"asr_train_config": config}, "files": {"asr_model_file": model}}


def _evil_packs(tmp_path):
    """(pack, the member or key its error names) for each way out of the unpack folder."""
    escaped = tmp_path / "escaped" / "config.yaml"
    tar = tmp_path / "member_dotdot.tar"
    with tarfile.open(tar, "w") as archive:
        for name, text in (("meta.yaml", yaml.safe_dump(_meta("exp/config.yaml"))), ("../escaped/config.yaml", CONFIG)):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            archive.addfile(info, io.BytesIO(text.encode()))
    link = tmp_path / "member_link.tar"
    with tarfile.open(link, "w") as archive:
        info = tarfile.TarInfo("exp")
        info.type, info.linkname = tarfile.SYMTYPE, str(tmp_path / "escaped")
        archive.addfile(info)
    return [
        (_zip(tmp_path / "meta_dotdot.zip", _meta("../escaped/config.yaml"), ["../escaped/config.yaml", "exp/model.pth"]),
         "member '../escaped/config.yaml'"),
        (_zip(tmp_path / "meta_absolute.zip", _meta(str(escaped)), [str(escaped), "exp/model.pth"]),
         f"member '{escaped}'"),
        (_zip(tmp_path / "member_only.zip", _meta("exp/config.yaml"), ["exp/config.yaml", "exp/model.pth", "../escaped/x"]),
         "member '../escaped/x'"),
        (_zip(tmp_path / "key_only.zip", _meta("exp/config.yaml", "../../escaped/model.pth"), ["exp/config.yaml"]),
         "files.asr_model_file '../../escaped/model.pth'"),
        (tar, "member '../escaped/config.yaml'"),
        (link, "member 'exp'"),
    ]


def test_from_pack_refuses_a_pack_that_points_outside_before_extracting(tmp_path):
    for evil, named in _evil_packs(tmp_path):
        unpacked = tmp_path / f"unpacked_{evil.stem}"
        with pytest.raises(ValueError) as error:
            AVSRSpeech2Text.from_pack(evil, unpacked)
        assert str(error.value).startswith(f"{evil}: "), str(error.value)
        assert named in str(error.value) and "outside" in str(error.value), str(error.value)
        assert not (tmp_path / "escaped").exists(), evil.name
        assert not unpacked.exists(), evil.name  # refused before extracting anything


@pytest.fixture(scope="module")
def experiment_dir(tmp_path_factory):
    work = tmp_path_factory.mktemp("unpack")
    exp, state = experiment(LowRankASRTask, TINY_ASR, work / "exp" / "asr_tiny")
    return work, exp, state


@pytest.mark.parametrize("stored", ["relative", "absolute"])
def test_a_real_pack_unpacks_inside_the_folder_and_loads(experiment_dir, tmp_path, monkeypatch, stored):
    from espnet_lrsms.packing import unpack_model

    work, exp, state = experiment_dir
    monkeypatch.chdir(work if stored == "relative" else tmp_path)  # ESPnet stores paths outside the cwd absolute
    outpath = tmp_path / "model.zip"
    assert pack.main(["asr", "--asr_train_config", str(exp / "config.yaml"), "--asr_model_file",
                      str(exp / "model.pth"), "--outpath", str(outpath)]) == 0
    with zipfile.ZipFile(outpath) as archive:
        config_value = yaml.safe_load(archive.read("meta.yaml"))["yaml_files"]["asr_train_config"]
    assert os.path.isabs(config_value) == (stored == "absolute")
    unpacked = tmp_path / "unpacked"
    files = unpack_model(outpath, unpacked)
    assert files == {key: str(unpacked / exp.relative_to(work if stored == "relative" else "/") / name)
                     for key, name in (("asr_train_config", "config.yaml"), ("asr_model_file", "model.pth"))}
    model, _ = LowRankASRTask.build_model_from_file(files["asr_train_config"], files["asr_model_file"])
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], atol=0, rtol=0)


def test_a_broken_or_foreign_archive_is_named(tmp_path):
    from espnet_lrsms.packing import unpack_model

    (tmp_path / "plain.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=rf"^{tmp_path / 'plain.zip'}: not a readable ESPnet pack \(BadZipFile"):
        unpack_model(tmp_path / "plain.zip", tmp_path / "u")
    no_meta = _zip(tmp_path / "no_meta.zip", {}, ["exp/config.yaml"])
    with pytest.raises(ValueError, match=r"no_meta.zip: no meta.yaml with ESPnet's 'yaml_files' and 'files'"):
        unpack_model(no_meta, tmp_path / "u")
    missing = _zip(tmp_path / "missing.zip", _meta("exp/config.yaml"), ["exp/config.yaml"])
    with pytest.raises(ValueError, match=r"missing.zip: meta.yaml's files.asr_model_file 'exp/model.pth' is not in"):
        unpack_model(missing, tmp_path / "u")
    assert not (tmp_path / "u").exists()
