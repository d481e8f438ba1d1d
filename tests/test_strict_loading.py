"""A checkpoint that does not fit the config is refused wherever this project loads one for decoding
(ESPnet's build_model_from_file loads with strict=False); ESPnet's partial --init_param still works."""
import argparse

import pytest
import torch
import yaml

from espnet_lrsms.asr.task import LowRankASRTask
from espnet_lrsms.avsr.task import AVSRTask
from espnet_lrsms.lm.task import LoRALMTask

from avsr_test_data import tiny_config as tiny_avsr_config
from asr_test_data import TINY_ASR, experiment
from conftest import REPO

LM_CONF = REPO / "conf" / "lm" / "demo"


@pytest.fixture(scope="module")
def lowrank_asr(tmp_path_factory):
    return experiment(LowRankASRTask, TINY_ASR, tmp_path_factory.mktemp("lowrank_asr"))


def without(state, prefix):
    return {k: v for k, v in state.items() if not k.startswith(prefix)}


def test_a_fitting_checkpoint_loads_every_tensor(lowrank_asr):
    exp, state = lowrank_asr
    model, _ = LowRankASRTask.build_model_from_file(exp / "config.yaml", exp / "model.pth")
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value, atol=0, rtol=0)


@pytest.mark.parametrize("part", ["frontend.", "ctc."])
def test_a_checkpoint_missing_a_part_is_refused_naming_file_count_and_keys(lowrank_asr, tmp_path, part):
    exp, state = lowrank_asr
    partial = without(state, part)
    gone = sorted(set(state) - set(partial))
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(RuntimeError) as error:
        LowRankASRTask.build_model_from_file(exp / "config.yaml", tmp_path / "partial.pth")
    message = str(error.value)
    assert str(tmp_path / "partial.pth") in message and str(exp / "config.yaml") in message
    assert f"{len(gone)} missing key(s) {gone[:4]!r}" in message and "0 unexpected key(s)" in message


def test_a_low_rank_checkpoint_is_refused_by_a_dense_config(lowrank_asr, tmp_path):
    exp, _ = lowrank_asr
    conf = yaml.safe_load(TINY_ASR.read_text())
    conf["encoder"], conf["decoder"] = "conformer", "transformer"
    del conf["encoder_conf"]["lowrank"], conf["decoder_conf"]["lowrank"]
    (tmp_path / "dense.yaml").write_text(yaml.safe_dump(conf))
    dense, _ = experiment(LowRankASRTask, tmp_path / "dense.yaml", tmp_path / "dense")
    with pytest.raises(RuntimeError, match=r"missing key\(s\) \['decoder.decoders.0.*unexpected key\(s\) \['decoder.decoders.0"):
        LowRankASRTask.build_model_from_file(dense / "config.yaml", exp / "model.pth")


def test_the_decoding_command_refuses_it_too(lowrank_asr, tmp_path):
    from espnet2.bin import asr_inference as espnet_asr_inference

    from espnet_lrsms.bin import asr_inference

    exp, state = lowrank_asr
    torch.save(without(state, "ctc."), tmp_path / "no_ctc.pth")
    task = espnet_asr_inference.ASRTask
    (tmp_path / "wav.scp").write_text("")  # no utterance: the model fails first
    with pytest.raises(RuntimeError, match=r"no_ctc.pth \(config .*\): .* 2 missing key\(s\) \['ctc.ctc_lo.bias'"):
        asr_inference.main([
            "--data_path_and_name_and_type", f"{tmp_path / 'wav.scp'},speech,sound",  # not read: the model fails first
            "--asr_train_config", str(exp / "config.yaml"), "--asr_model_file", str(tmp_path / "no_ctc.pth"),
            "--output_dir", str(tmp_path / "out"),
        ])
    assert espnet_asr_inference.ASRTask is task  # ESPnet's module is left as it was


def test_init_param_still_initialises_part_of_the_model(lowrank_asr, tmp_path):
    """ESPnet's trainer loads --init_param with load_pretrained_model: a partial checkpoint, or one part."""
    from espnet2.torch_utils.load_pretrained_model import load_pretrained_model

    exp, state = lowrank_asr
    torch.save(without(state, "frontend."), tmp_path / "no_frontend.pth")
    args = yaml.safe_load((exp / "config.yaml").read_text())
    torch.manual_seed(1)
    model = LowRankASRTask.build_model(argparse.Namespace(**args))
    own_frontend = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("frontend.")}
    load_pretrained_model(str(tmp_path / "no_frontend.pth"), model, ignore_init_mismatch=False)
    loaded = model.state_dict()
    for key, value in state.items():
        expected = own_frontend[key] if key.startswith("frontend.") else value
        torch.testing.assert_close(loaded[key], expected, atol=0, rtol=0)

    torch.manual_seed(2)
    model = LowRankASRTask.build_model(argparse.Namespace(**args))
    load_pretrained_model(f"{exp / 'model.pth'}:encoder:encoder", model, ignore_init_mismatch=False)
    torch.testing.assert_close(model.encoder.encoders[0].self_attn.linear_q.u, state["encoder.encoders.0.self_attn.linear_q.u"])


def test_avsr_checkpoint_without_the_video_front_end_is_refused(tmp_path):
    from espnet_lrsms.avsr.inference import AVSRSpeech2Text

    exp, state = experiment(AVSRTask, tiny_avsr_config(tmp_path / "avsr.yaml"), tmp_path / "avsr")
    AVSRTask.build_model_from_file(exp / "config.yaml", exp / "model.pth")
    torch.save(without(state, "video_frontend."), tmp_path / "audio_only.pth")
    with pytest.raises(RuntimeError, match=r"audio_only.pth .*: the checkpoint does not fit the ESPnetAVSRModel: \d+ missing"):
        AVSRSpeech2Text(exp / "config.yaml", tmp_path / "audio_only.pth")


def test_an_adapted_lm_config_refuses_the_base_lms_checkpoint(tmp_path):
    base, base_state = experiment(LoRALMTask, LM_CONF / "train_lm_transformer_tiny.yaml", tmp_path / "base")
    lora_conf = yaml.safe_load((LM_CONF / "lora_vanilla_tiny.yaml").read_text())["lora_conf"]
    adapted, adapted_state = experiment(
        LoRALMTask, LM_CONF / "train_lm_transformer_tiny.yaml", tmp_path / "adapted", lora_conf=lora_conf
    )
    model, _ = LoRALMTask.build_model_from_file(adapted / "config.yaml", adapted / "model.pth")
    assert set(model.state_dict()) == set(adapted_state)
    missing, unexpected = set(adapted_state) - set(base_state), set(base_state) - set(adapted_state)
    assert any("lora_A" in k for k in missing)  # and PEFT's base_layer names for the adapted linears
    with pytest.raises(RuntimeError, match=rf"{len(missing)} missing key\(s\) .*, {len(unexpected)} unexpected"):
        LoRALMTask.build_model_from_file(adapted / "config.yaml", base / "model.pth")


def test_decoding_projects_the_encoder_output_once_for_a_dense_decoder_with_espnets_hypotheses(tmp_path):
    """espnet_lrsms.bin.asr_inference gives ESPnet's dense decoder the shared k/v projection of the
    expanded encoder output; the n-best hypotheses and scores are ESPnet's own."""
    from espnet2.bin.asr_inference import Speech2Text

    from espnet_lrsms.asr.lowrank_blocks import SharedInputQKV
    from espnet_lrsms.bin.asr_inference import ProjectSpeech2Text

    conf = yaml.safe_load(TINY_ASR.read_text())
    conf["encoder"], conf["decoder"] = "conformer", "transformer"
    del conf["encoder_conf"]["lowrank"], conf["decoder_conf"]["lowrank"]
    (tmp_path / "dense.yaml").write_text(yaml.safe_dump(conf))
    dense, _ = experiment(LowRankASRTask, tmp_path / "dense.yaml", tmp_path / "dense")
    options = dict(asr_train_config=dense / "config.yaml", asr_model_file=dense / "model.pth", beam_size=4,
                   ctc_weight=0.3, nbest=3, maxlenratio=0.3)
    ours, espnets = ProjectSpeech2Text(**options), Speech2Text(**options)
    fused = [m for m in ours.asr_model.decoder.modules() if isinstance(getattr(m, "forward_qkv", None), SharedInputQKV)]
    assert len(fused) == 2 * len(ours.asr_model.decoder.decoders)  # self and source attention of each block
    torch.manual_seed(0)
    speech = torch.randn(16000)
    with torch.no_grad():
        results, expected = ours(speech), espnets(speech)
    assert len(results) == len(expected) == 3
    for (_, tokens, _, hyp), (_, ref_tokens, _, ref) in zip(results, expected):
        assert tokens == ref_tokens
        torch.testing.assert_close(hyp.score, ref.score, rtol=1e-4, atol=1e-4)
