"""Real ESPnet training through espnet_lrsms.bin.asr_train on generated data, then reload via Speech2Text."""

import pytest
import soundfile
import torch
import yaml

from espnet_lrsms.lowrank import FactorizedLinear

from asr_test_data import TINY, train_command

@pytest.fixture
def trained(tone_experiment):
    """The session's tone-data experiment (conftest.py): 2 epochs of the tiny config."""
    return tone_experiment


@pytest.mark.end_to_end
def test_training_runs_epochs_and_loss_falls(trained):
    stats = torch.load(trained / "checkpoint.pth", map_location="cpu", weights_only=False)["reporter"]
    losses = [stats["stats"][e]["train"]["loss"] for e in (1, 2)]
    assert (trained / "2epoch.pth").is_file()
    assert losses[1] < losses[0], losses


@pytest.mark.end_to_end
def test_checkpoint_holds_factors_not_dense_weights(trained):
    state = torch.load(trained / "2epoch.pth", map_location="cpu")
    assert "encoder.encoders.0.self_attn.linear_q.u" in state
    assert "encoder.encoders.0.self_attn.linear_q.weight" not in state
    # block 1 of 2 with mhsa [0.25, 0.5]: alpha 0.375 x 64 = 24
    assert state["encoder.encoders.1.self_attn.linear_q.u"].shape == (64, 24)


@pytest.mark.end_to_end
def test_speech2text_reloads_the_same_model(trained, tone_data):
    from espnet2.bin.asr_inference import Speech2Text

    from espnet_lrsms.asr.task import LowRankASRTask

    config, ckpt = trained / "config.yaml", trained / "2epoch.pth"
    speech2text = Speech2Text(asr_train_config=config, asr_model_file=ckpt, beam_size=3, ctc_weight=0.3, nbest=1)
    assert any(isinstance(m, FactorizedLinear) for m in speech2text.asr_model.modules())

    reference, _ = LowRankASRTask.build_model_from_file(config, None, "cpu")
    reference.load_state_dict(torch.load(ckpt, map_location="cpu"), strict=True)
    reference.eval()

    wave, _ = soundfile.read(tone_data / "train" / "wav" / "utt000.wav", dtype="float32")
    speech = torch.from_numpy(wave)[None]
    lengths = torch.tensor([speech.size(1)])
    with torch.no_grad():
        enc_ref, _ = reference.encode(speech, lengths)
        enc_s2t, _ = speech2text.asr_model.encode(speech, lengths)
    torch.testing.assert_close(enc_s2t, enc_ref, atol=0, rtol=0)
    first, second = speech2text(wave), speech2text(wave)
    assert first[0][0] == second[0][0]  # deterministic decoding of the reloaded model


@pytest.mark.end_to_end
def test_loading_into_another_rank_schedule_fails_loudly(trained, tmp_path):
    from espnet2.bin.asr_inference import Speech2Text

    config = yaml.safe_load((trained / "config.yaml").read_text())
    config["encoder_conf"]["lowrank"]["ffn"] = None  # dense FFNs: keys w_1.weight instead of w_1.u/vt
    other = tmp_path / "config.yaml"
    other.write_text(yaml.safe_dump(config))
    with pytest.raises(RuntimeError, match="does not match the structure of the LowRankConformerEncoder"):
        Speech2Text(asr_train_config=other, asr_model_file=trained / "2epoch.pth")


def test_espnet_init_option_keeps_the_spectral_init():
    from espnet_lrsms.asr.build import build_asr_model

    model = build_asr_model(TINY, vocab_size=12, overrides={"init": "xavier_uniform"})
    layers = [m for m in model.modules() if isinstance(m, FactorizedLinear)]
    assert layers
    for layer in layers:  # Eq. 1: U and V^T both carry sqrt(Sigma_r), column for row
        torch.testing.assert_close(layer.u.norm(dim=0), layer.vt.norm(dim=1), atol=1e-5, rtol=1e-4)
