"""Atomic writes: nothing finished-looking after a failure, leftovers of earlier failures cleaned."""
import pytest

from espnet_lrsms.fileio import archive_member_path, replaced_on_success, temporary_sibling, write_text_atomic


def test_file_is_replaced_only_on_success(tmp_path):
    target = tmp_path / "RESULTS.md"
    write_text_atomic(target, "old\n")
    with pytest.raises(RuntimeError):
        with replaced_on_success(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RESULTS.md"]
    write_text_atomic(target, "new\n")
    assert target.read_text() == "new\n"


def test_directory_replaces_the_old_one_and_keeps_suffixes(tmp_path):
    out = tmp_path / "data" / "train"
    with replaced_on_success(out) as tmp:
        tmp.mkdir()
        (tmp / "wav.scp").write_text("a x.wav\n")
    with replaced_on_success(out) as tmp:
        tmp.mkdir()
        (tmp / "text").write_text("a hello\n")
    assert sorted(p.name for p in out.iterdir()) == ["text"]
    assert temporary_sibling(tmp_path / "plot.png").name == "plot.tmp.png"
    assert temporary_sibling(out).name == "train.tmp"


def test_leftover_of_an_earlier_failure_is_removed_first(tmp_path):
    out = tmp_path / "decode"
    (tmp_path / "decode.tmp" / "logdir").mkdir(parents=True)
    with replaced_on_success(out) as tmp:
        assert not tmp.exists()
        tmp.mkdir()
    assert out.is_dir() and not (tmp_path / "decode.tmp").exists()


def test_archive_member_names_that_leave_the_folder_are_named():
    assert str(archive_member_path("m.zip", "exp/asr/config.yaml")) == "exp/asr/config.yaml"
    for name in ("../x", "exp/../../x", "/etc/passwd"):
        with pytest.raises(ValueError, match=rf"^m.zip: member {name!r} points outside the archive"):
            archive_member_path("m.zip", name)
    with pytest.raises(ValueError, match=r"^m.zip: meta.yaml's files.asr_model_file '../m.pth' points outside"):
        archive_member_path("m.zip", "../m.pth", "meta.yaml's files.asr_model_file")
