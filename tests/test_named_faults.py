"""Careless input gets an error that names the file, key or value at fault (issue 24 item 10), not a bare
``UnicodeDecodeError``, ``KeyError: 101``, ``LinAlgError`` or a traceback."""
import logging
import shutil

import numpy as np
import pytest
import soundfile
import torch

from espnet_lrsms.bin import analysis_rank_emergence
from espnet_lrsms.bin.speed_perturb import main as speed_perturb_main
from espnet_lrsms.fileio import load_weights_only
from espnet_lrsms.recipe.data_prep import DataPrepError
from espnet_lrsms.recipe.librispeech import scan_librispeech
from espnet_lrsms.recipe.prepare_data import prepare_set

from conftest import REPO


def test_a_latin1_byte_in_a_transcript_names_file_and_line(tmp_path):
    chapter = tmp_path / "LibriSpeech" / "dev-clean" / "100" / "1001"
    shutil.copytree(REPO / "demo" / "librispeech" / "LibriSpeech" / "dev-clean" / "100" / "1001", chapter)
    trans = chapter / "100-1001.trans.txt"
    lines = trans.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].rstrip(b"\n") + b" CAF\xe9\n"  # latin-1 e-acute
    trans.write_bytes(b"".join(lines))
    with pytest.raises(DataPrepError, match=rf"{trans}:2: not UTF-8 text \(invalid continuation byte at byte \d+\)"):
        prepare_set(scan_librispeech, tmp_path, "dev_clean", tmp_path / "data")
    assert not (tmp_path / "data" / "dev_clean").exists()


def test_a_text_file_named_pth_is_not_a_checkpoint(tmp_path):
    fake = tmp_path / "10epoch.pth"
    fake.write_text("epoch 10: these are my notes\n")
    with pytest.raises(ValueError, match=f"{fake}: not a PyTorch checkpoint"):
        load_weights_only(fake)
    with pytest.raises(SystemExit, match=f"{fake}: not a PyTorch checkpoint"):
        analysis_rank_emergence.main([str(fake), "--output_dir", str(tmp_path / "out")])


def test_a_nan_weight_names_checkpoint_and_key(tmp_path):
    state = {"encoder.encoders.0.self_attn.linear_q.weight": torch.randn(8, 8),
             "encoder.encoders.0.feed_forward.w_1.weight": torch.randn(16, 8)}
    state["encoder.encoders.0.feed_forward.w_1.weight"][3, 2] = float("nan")
    torch.save(state, tmp_path / "3epoch.pth")
    with pytest.raises(SystemExit, match=f"{tmp_path}/3epoch.pth: encoder.encoders.0.feed_forward.w_1.weight "
                                         "has 1 of 128 values NaN or infinite"):
        analysis_rank_emergence.main([str(tmp_path / "3epoch.pth"), "--output_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("factor", ["nan", "inf", "-0.9"])
def test_a_speed_factor_that_is_no_positive_number(tmp_path, caplog, factor):
    data = tmp_path / "train"
    data.mkdir()
    soundfile.write(tmp_path / "a.flac", np.zeros(1600, dtype=np.float32), 16000)
    (data / "wav.scp").write_text(f"a {tmp_path / 'a.flac'}\n")
    (data / "text").write_text("a HELLO\n")
    (data / "utt2spk").write_text("a a\n")
    with caplog.at_level(logging.ERROR):
        assert speed_perturb_main(["--data_dir", str(data), "--out_dir", str(tmp_path / "sp"), "--factors", "0.9", factor]) == 1
    assert f"--speed_perturb_factors: expected positive finite factors, got {float(factor)}" in caplog.text
    assert not (tmp_path / "sp").exists()
