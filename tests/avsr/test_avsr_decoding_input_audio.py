"""AVSR decoding checks its audio as the ASR command does (issue 33 item 16): a stereo, wrong-rate or NaN
utterance is named before anything is decoded, and a waveform given to the Python API is checked too."""
import numpy as np
import pytest
import soundfile
import torch

from espnet_lrsms.asr.input_audio import AudioInputError
from espnet_lrsms.avsr.inference import check_waveform


def test_avsr_inference_names_each_faulty_utterance_before_decoding(tmp_path, caplog):
    from espnet_lrsms.bin.avsr_inference import main as avsr_inference

    t = np.arange(8000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    nan = tone.copy()
    nan[10:14] = np.nan
    soundfile.write(tmp_path / "ok.wav", tone, 16000)
    soundfile.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    soundfile.write(tmp_path / "stereo.wav", np.stack([tone, tone], 1), 16000)
    soundfile.write(tmp_path / "narrow.wav", tone[::2], 8000)
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"{u} {tmp_path / f}.wav\n" for u, f in
                           (("u_ok", "ok"), ("u_nan", "nan"), ("u_stereo", "stereo"), ("u_8k", "narrow"))))
    config = tmp_path / "config.yaml"
    config.write_text("frontend: resnet1d\nfrontend_conf:\n    fs: 16k\n")
    out = tmp_path / "decode"
    code = avsr_inference(["--ngpu", "0", "--data_path_and_name_and_type", f"{scp},speech,sound",
                           "--asr_train_config", str(config), "--asr_model_file", str(tmp_path / "none.pth"),
                           "--output_dir", str(out)])
    assert code == 1
    assert f"{scp}: 3 fault(s) in the audio to decode" in caplog.text
    for message in ("u_nan: 4 of 8000 samples are NaN or infinite", "u_stereo: 2 channels (the model takes one",
                    "u_8k: 8000 Hz (the model was trained on 16000 Hz audio"):
        assert message in caplog.text
    assert "u_ok" not in caplog.text
    assert not out.exists()


def test_a_waveform_given_to_the_api_is_checked():
    tone = np.sin(np.arange(1600) / 10).astype(np.float32)
    check_waveform(tone, "clip.mp4", None, 16000)
    check_waveform(torch.from_numpy(tone)[:, None], "clip.mp4", 16000, 16000)  # (L, 1) is mono
    with pytest.raises(AudioInputError, match=r"^clip\.mp4: 2 channels \(the model takes one"):
        check_waveform(np.stack([tone, tone], 1), "clip.mp4", None, 16000)
    with pytest.raises(AudioInputError, match=r"^speech: 8000 Hz \(the model was trained on 16000 Hz audio"):
        check_waveform(tone, "speech", 8000, 16000)
    bad = torch.from_numpy(tone).clone()
    bad[5] = float("inf")
    bad[7] = float("nan")
    with pytest.raises(AudioInputError, match=r"^speech: 2 of 1600 samples are NaN or infinite$"):
        check_waveform(bad, "speech", None, 16000)
