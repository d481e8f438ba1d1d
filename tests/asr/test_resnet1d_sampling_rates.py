"""The ResNet-1D front end at ESPnet's --frontend_conf fs: a multiple of 4000 Hz keeps 40 ms frames (25 frames/s)
by scaling the stem's stride and kernel; any other rate is refused when the model is built, naming the rule."""
import pytest
import torch
import yaml

from espnet_lrsms.asr.input_audio import trained_sampling_rate
from espnet_lrsms.asr.resnet1d_frontend import ResNet1DFrontend
from espnet_lrsms.asr.task import LowRankASRTask

from conftest import REPO

TINY = REPO / "conf" / "demo" / "train_asr_lrsms_tiny.yaml"


@pytest.mark.parametrize("fs", [8000, "8k"])
def test_8khz_keeps_40_ms_frames(fs):
    frontend = ResNet1DFrontend(fs=fs, channels=[8, 8, 8, 16]).eval()
    stem = frontend.stem[0]
    assert frontend.fs == 8000 and frontend.samples_per_frame == 320
    assert (stem.kernel_size, stem.stride, stem.padding) == ((40,), (2,), (19,))  # 16 kHz: 80, 4, 38 (Auto-AVSR's)
    with torch.no_grad():
        feats, lengths = frontend(torch.randn(2, 8000), torch.tensor([8000, 4500]))
    assert feats.shape == (2, 25, 16) and lengths.tolist() == [25, 14]  # 1 s: 25 frames; 4500 // 320
    from espnet.nets.pytorch_backend.transformer.subsampling import TooShortUttError

    with pytest.raises(TooShortUttError, match=r"at least 320 samples \(40 ms at 8000 Hz\)"):
        frontend(torch.randn(1, 300), torch.tensor([300]))


def test_48khz_and_16khz_give_25_frames_per_second():
    for fs, stride in ((48000, 12), (16000, 4)):
        frontend = ResNet1DFrontend(fs=fs, channels=[8, 8, 8, 8]).eval()
        with torch.no_grad():
            feats, _ = frontend(torch.randn(1, fs), torch.tensor([fs]))
        assert frontend.stem[0].stride == (stride,) and feats.shape[1] == 25, fs


@pytest.mark.parametrize("fs, message", [
    (22050, "resnet1d takes a multiple of 4000 Hz (its stem stride is fs/4000, so that a frame is 40 ms: 4 at the "
            "paper's 16000 Hz, 2 at 8000 Hz), got 22050; resample the audio to 16000 Hz (the recipe's --fs 16k)"),
    ("11.025k", "resnet1d takes a multiple of 4000 Hz"),
    ("fast", "frontend_conf.fs: not a sampling rate: 'fast' (e.g. 16000 or 16k)"),
    (0, "a sampling rate must be positive, got 0"),
])
def test_other_rates_are_refused_by_name(fs, message):
    with pytest.raises(ValueError) as err:
        ResNet1DFrontend(fs=fs)
    assert str(err.value).startswith("frontend_conf.fs: ") and message in str(err.value)


def _args(*extra):
    return LowRankASRTask.get_parser().parse_args(
        ["--config", str(TINY), "--token_list", "x", "--output_dir", "unused", *extra])


def test_espnets_frontend_conf_fs_reaches_the_model_and_its_config(tmp_path):
    """asr.sh's --frontend_conf fs=8k merges into the config's frontend_conf (ESPnet's NestedDictAction), builds an
    8 kHz front end, and decoding reads 8000 back from the saved config."""
    from espnet_lrsms.train.build import dummy_token_list

    args = _args("--frontend_conf", "fs=8k")
    assert args.frontend_conf["fs"] == "8k" and args.frontend_conf["channels"] == [16, 32, 64, 128]
    args.token_list = dummy_token_list(12)
    model = LowRankASRTask.build_model(args)
    assert model.frontend.samples_per_frame == 320
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    assert trained_sampling_rate(tmp_path / "config.yaml") == 8000


def test_an_unsupported_rate_stops_the_build_before_any_training():
    from espnet_lrsms.train.build import dummy_token_list

    args = _args("--frontend_conf", "fs=22050")
    args.token_list = dummy_token_list(12)
    with pytest.raises(ValueError, match="frontend_conf.fs: resnet1d takes a multiple of 4000 Hz"):
        LowRankASRTask.build_model(args)
