"""The raw-waveform ResNet-1D front end (frontend: resnet1d)."""
import pytest
import torch

from espnet_lrsms.asr.resnet1d_frontend import SAMPLES_PER_FRAME, ResNet1DFrontend


@pytest.fixture(scope="module")
def frontend():
    torch.manual_seed(0)
    return ResNet1DFrontend().eval()


def test_parameter_count_and_output_size(frontend):
    assert sum(p.numel() for p in frontend.parameters()) == 3_848_576  # DESIGN.md: ~3.9 M
    assert frontend.output_size() == 512


def test_25_frames_per_second_and_lengths(frontend):
    wave = torch.randn(2, 16000)
    feats, lengths = frontend(wave, torch.tensor([16000, 9000]))
    assert SAMPLES_PER_FRAME == 640
    assert feats.shape == (2, 25, 512)
    assert lengths.tolist() == [25, 14]  # 9000 // 640


def test_padding_does_not_change_an_utterance(frontend):
    torch.manual_seed(1)
    short = torch.randn(1, 6400)
    padded = torch.cat([short, torch.zeros(1, 3200)], dim=1)
    batch = torch.cat([padded, torch.randn(1, 9600)])
    with torch.no_grad():
        alone, n_alone = frontend(short, torch.tensor([6400]))
        batched, n_batched = frontend(batch, torch.tensor([6400, 9600]))
    assert n_alone.item() == n_batched[0].item() == 10
    # frames away from the utterance's end see no padding at all
    torch.testing.assert_close(batched[0, :8], alone[0, :8], atol=1e-4, rtol=1e-4)


def test_z_normalisation_makes_it_gain_and_offset_invariant(frontend):
    torch.manual_seed(2)
    wave = torch.randn(1, 12800)
    lengths = torch.tensor([12800])
    with torch.no_grad():
        reference, _ = frontend(wave, lengths)
        scaled, _ = frontend(7.5 * wave + 0.3, lengths)
    torch.testing.assert_close(scaled, reference, atol=1e-4, rtol=1e-4)


def test_too_short_and_bad_options_are_errors(frontend):
    from espnet.nets.pytorch_backend.transformer.subsampling import TooShortUttError

    with pytest.raises(TooShortUttError, match="at least 640 samples"):
        frontend(torch.randn(1, 600), torch.tensor([600]))
    with pytest.raises(ValueError, match="frontend_conf.fs: resnet1d takes a multiple of 4000 Hz .*, got 22050"):
        ResNet1DFrontend(fs=22050)
    with pytest.raises(ValueError, match="frontend_conf.activation: unknown activation 'gelu'"):
        ResNet1DFrontend(activation="gelu")
    with pytest.raises(ValueError, match=r"frontend_conf.channels: expected 4 positive widths, got \[8, 16\]"):
        ResNet1DFrontend(channels=[8, 16])


def test_narrow_channels_for_demos():
    narrow = ResNet1DFrontend(channels=[16, 16, 32, 64]).eval()
    feats, lengths = narrow(torch.randn(1, 6400), torch.tensor([6400]))
    assert narrow.output_size() == 64 and feats.shape == (1, 10, 64) and lengths.tolist() == [10]


def test_a_19_ms_utterance_decodes_to_an_empty_hypothesis(tone_data, tmp_path):
    """ESPnet's decoding loop writes an empty hypothesis for TooShortUttError, and goes on."""
    import numpy as np
    import soundfile
    from espnet.nets.pytorch_backend.transformer.subsampling import TooShortUttError

    from espnet_lrsms.bin.asr_inference import main as asr_inference
    from espnet_lrsms.bin.asr_train import main as asr_train

    from asr_test_data import train_command

    with pytest.raises(TooShortUttError) as err:
        ResNet1DFrontend()(torch.randn(1, 304), torch.tensor([304]))
    assert (err.value.actual_size, err.value.limit) == (304, SAMPLES_PER_FRAME)
    model = tmp_path / "model"
    asr_train(train_command(tone_data, model, "--dry_run", "true")[3:])
    from espnet_lrsms.asr.task import LowRankASRTask

    built, _ = LowRankASRTask.build_model_from_file(model / "config.yaml", None, "cpu")
    torch.save(built.state_dict(), model / "init.pth")
    short = tmp_path / "short.wav"
    soundfile.write(short, np.zeros(304, dtype=np.float32), 16000)  # 19 ms
    first = (tone_data / "train" / "wav.scp").read_text().splitlines()[0]
    scp = tmp_path / "wav.scp"
    scp.write_text(f"{first}\nshort {short}\n")
    out = tmp_path / "decode"
    asr_inference([
        "--batch_size", "1", "--ngpu", "0", "--beam_size", "2", "--data_path_and_name_and_type", f"{scp},speech,sound",
        "--asr_train_config", str(model / "config.yaml"), "--asr_model_file", str(model / "init.pth"),
        "--output_dir", str(out),
    ])
    text = dict(line.partition(" ")[::2] for line in (out / "1best_recog" / "text").read_text().splitlines())
    assert sorted(text) == ["short", "utt000"] and text["short"].strip() == ""
