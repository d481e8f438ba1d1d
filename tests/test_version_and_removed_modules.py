"""One version string (issue 33 item 18): setup.py reads espnet_lrsms/version.py; CHANGELOG.md names what each
release moved; an old pack or config naming a module a later release removed says which version made it and
which module replaced it."""
import importlib
import logging
import re
import subprocess
import sys
import zipfile

import yaml
from conftest import REPO

import espnet_lrsms
from espnet_lrsms.packing import pack_meta, removed_module_notes, requirement_hint, unpack_model
from espnet_lrsms.version import REMOVED_IN

OLD_LOAD = "espnet_lrsms.tasks.avsr_speech2text.AVSRSpeech2Text.from_pack"


def test_the_version_is_0_3_0_in_one_place_and_packs_require_it():
    assert espnet_lrsms.__version__ == "0.3.0"
    result = subprocess.run([sys.executable, "setup.py", "--version"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "0.3.0"
    assert not re.search(r'version\s*=\s*"\d', (REPO / "setup.py").read_text())  # no second literal
    assert pack_meta([], [])["requires"] == ["espnet-lrsms==0.3.0"]


def test_the_changelog_names_every_removed_module_and_its_replacement():
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    for release, removed in REMOVED_IN.items():
        assert f"## {release}" in changelog
        for old, new in removed.items():
            assert f"`{old}`" in changelog, old
            assert f"`{new.split()[0].rstrip(',')}`" in changelog, new


def old_pack(tmp_path, version="0.1.0"):
    """A pack as espnet_lrsms 0.1.0 wrote it, whose meta.yaml names a module 0.2.0 removed."""
    pack = tmp_path / "asr_old.zip"
    meta = {"espnet": "202511", "files": {"asr_model_file": "exp/asr_old/model.pth"},
            "yaml_files": {"asr_train_config": "exp/asr_old/config.yaml"},
            "espnet_lrsms": version, "requires": [f"espnet-lrsms=={version}"],
            "espnet_lrsms_components": {"encoder": "lowrank_conformer"}, "load": OLD_LOAD}
    with zipfile.ZipFile(pack, "w") as archive:
        archive.writestr("meta.yaml", yaml.safe_dump(meta))
        archive.writestr("exp/asr_old/config.yaml", "encoder: lowrank_conformer\n")
        archive.writestr("exp/asr_old/model.pth", b"")
    return pack


def test_unpacking_an_old_pack_says_which_version_made_it_and_what_replaced_the_module(tmp_path, caplog):
    pack = old_pack(tmp_path)
    with caplog.at_level(logging.WARNING, logger="espnet_lrsms.packing"):
        files = unpack_model(pack, tmp_path / "unpacked")
    assert caplog.messages == [
        f"{pack} (meta.yaml): it names espnet_lrsms.tasks.avsr_speech2text (made by espnet_lrsms 0.1.0), which "
        "espnet_lrsms 0.2.0 replaced by espnet_lrsms.avsr.transcriber (MP4Transcriber) (installed: espnet_lrsms "
        "0.3.0; see CHANGELOG.md)"]
    hint = requirement_hint(files["asr_train_config"])  # what a failing load appends
    assert hint.startswith("this model needs espnet_lrsms 0.1.0: pip install espnet-lrsms==0.1.0")
    assert "it names espnet_lrsms.tasks.avsr_speech2text (made by espnet_lrsms 0.1.0)" in hint


def test_a_config_naming_a_removed_module_or_function(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("# step hooks: espnet_lrsms.asr.unit_dropout.hold_dropped_units\n"
                      "specaug: adaptive_time_mask  # espnet_lrsms.train.time_mask.AdaptiveTimeMask\n")
    hint = requirement_hint(config)
    assert "it names espnet_lrsms.asr.unit_dropout.hold_dropped_units (made by an espnet_lrsms that did not " \
           "record its version), which espnet_lrsms 0.2.0 replaced by espnet_lrsms.train.step_hooks" in hint
    assert "it names espnet_lrsms.train.time_mask (made by" in hint and "replaced by espnet_lrsms.asr.time_mask" in hint
    # names that still exist, or a pack made by 0.2.0 itself: nothing to say
    assert removed_module_notes(["espnet_lrsms.asr.task espnet_lrsms.asr.unit_dropout.UnitDropout"], None) == []
    assert removed_module_notes([OLD_LOAD], "0.2.0") == []


def test_the_names_issue_34_moved_below_the_wings_are_told_with_their_new_home():
    """lm/nbest.py and the shared half of lm/text.py moved to espnet_lrsms/text/; what stayed in lm.text is not named."""
    notes = removed_module_notes(["from espnet_lrsms.lm.nbest import read_nbest",
                                  "espnet_lrsms.lm.text.write_text_shapes espnet_lrsms.lm.text.write_lm_text "
                                  "espnet_lrsms.lm.text.lm_vocabulary"], "0.1.0")
    assert [note.split(" (installed")[0] for note in notes] == [
        "it names espnet_lrsms.lm.nbest (made by espnet_lrsms 0.1.0), which espnet_lrsms 0.3.0 replaced by "
        "espnet_lrsms.text.nbest",
        "it names espnet_lrsms.lm.text.write_text_shapes (made by espnet_lrsms 0.1.0), which espnet_lrsms 0.3.0 "
        "replaced by espnet_lrsms.text.tokens.write_text_shapes",
    ]
    moved = {old: new.split()[0] for old, new in REMOVED_IN["0.3.0"].items()
             if old.startswith(("espnet_lrsms.lm.nbest", "espnet_lrsms.lm.text."))}
    assert len(moved) == 5
    for old, new in moved.items():  # each new home holds the name; lm.text no longer does (moved, not copied)
        if old == "espnet_lrsms.lm.nbest":
            importlib.import_module(new)
            continue
        module, _, name = new.rpartition(".")
        assert hasattr(importlib.import_module(module), name), new
        assert not hasattr(importlib.import_module("espnet_lrsms.lm.text"), name), old
