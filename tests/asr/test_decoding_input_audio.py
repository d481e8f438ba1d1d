"""Decoding names each utterance of wav.scp it cannot decode as it is (issue 24 item 6): NaN samples (before:
an empty hypothesis with a NaN score), a stereo entry (before: an unclear RuntimeError), 8 kHz audio (before:
decoded at the wrong rate, silently)."""
import numpy as np
import pytest
import soundfile
import torch

from espnet_lrsms.asr.input_audio import AudioInputError, check_sound_scp, trained_sampling_rate


def _faulty_scp(tmp_path, good_line):
    t = np.arange(8000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    nan = tone.copy()
    nan[100:103] = np.nan
    soundfile.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    soundfile.write(tmp_path / "stereo.wav", np.stack([tone, tone], 1), 16000)
    soundfile.write(tmp_path / "narrow.wav", tone[::2], 8000)
    scp = tmp_path / "wav.scp"
    scp.write_text(f"{good_line}\nu_nan {tmp_path / 'nan.wav'}\nu_stereo {tmp_path / 'stereo.wav'}\n"
                   f"u_8k {tmp_path / 'narrow.wav'}\n")
    return scp


MESSAGES = ["u_nan: 3 of 8000 samples are NaN or infinite", "u_stereo: 2 channels (the model takes one",
            "u_8k: 8000 Hz (the model was trained on 16000 Hz audio"]


def test_each_fault_is_named_with_its_utterance(tmp_path):
    soundfile.write(tmp_path / "ok.wav", np.zeros(1600, dtype=np.int16), 16000)
    scp = _faulty_scp(tmp_path, f"u_ok {tmp_path / 'ok.wav'}")
    with pytest.raises(AudioInputError, match=f"{scp}: 3 fault\\(s\\) in the audio to decode") as err:
        check_sound_scp(scp, expected_rate=16000)
    for message in MESSAGES:
        assert message in str(err.value)
    assert check_sound_scp(scp, keys=["u_ok"], expected_rate=16000) == 1  # a decoding job's own keys only
    (tmp_path / "c.yaml").write_text("frontend: default\nfrontend_conf:\n    fs: 8k\n")
    assert trained_sampling_rate(tmp_path / "c.yaml") == 8000
    (tmp_path / "c.yaml").write_text("frontend: resnet1d\n")
    assert trained_sampling_rate(tmp_path / "c.yaml") == 16000


def test_decoding_refuses_them_before_it_decodes(tone_data, tmp_path, caplog):
    from espnet_lrsms.bin.asr_inference import main as asr_inference
    from espnet_lrsms.bin.asr_train import main as asr_train
    from espnet_lrsms.asr.task import LowRankASRTask

    from asr_test_data import train_command

    model = tmp_path / "model"
    asr_train(train_command(tone_data, model, "--dry_run", "true")[3:])
    built, _ = LowRankASRTask.build_model_from_file(model / "config.yaml", None, "cpu")
    torch.save(built.state_dict(), model / "init.pth")
    scp = _faulty_scp(tmp_path, (tone_data / "train" / "wav.scp").read_text().splitlines()[0])
    out = tmp_path / "decode"
    code = asr_inference([
        "--batch_size", "1", "--ngpu", "0", "--beam_size", "2", "--data_path_and_name_and_type", f"{scp},speech,sound",
        "--asr_train_config", str(model / "config.yaml"), "--asr_model_file", str(model / "init.pth"),
        "--output_dir", str(out),
    ])
    assert code == 1
    for message in MESSAGES:
        assert message in caplog.text
    assert not out.exists()
