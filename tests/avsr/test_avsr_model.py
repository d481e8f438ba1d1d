"""The AVSR model (tiny): front ends, alignment, fusion, modality dropout, forward/backward, missing streams."""
import pytest
import torch

from espnet_lrsms.avsr import ESPnetAVSRModel, MLPFusion, ResNet2DVideoFrontend
from espnet_lrsms.avsr.build import build_avsr_model
from espnet_lrsms.train.schedulers import WarmupCosineLR

from avsr_test_data import CROP, FRAME, tiny_config


@pytest.fixture
def model(tmp_path) -> ESPnetAVSRModel:
    torch.manual_seed(0)
    return build_avsr_model(tiny_config(tmp_path / "tiny.yaml"), vocab_size=8)


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    speech = torch.randn(2, 16000, generator=g)
    speech_lengths = torch.tensor([16000, 11520])  # 25 and 18 audio frames
    video = torch.randint(0, 256, (2, 26, FRAME, FRAME), generator=g).float()
    video_lengths = torch.tensor([26, 17])  # one more / one fewer than the audio
    text = torch.tensor([[3, 4, 5, 6], [4, 4, -1, -1]])
    text_lengths = torch.tensor([4, 2])
    return dict(speech=speech, speech_lengths=speech_lengths, video=video, video_lengths=video_lengths,
                text=text, text_lengths=text_lengths)


def test_video_frontend_shapes_crops_and_flips():
    frontend = ResNet2DVideoFrontend(crop_size=CROP, channels=(8, 8, 16, 24))
    video = torch.arange(FRAME, dtype=torch.float32).repeat(1, 3, FRAME, 1)  # pixel value = column index
    frontend.eval()
    centre = frontend.crop(video)
    assert centre.shape == (1, 3, CROP, CROP)
    assert centre[0, 0, 0, 0] == (FRAME - CROP) // 2  # centre window starts at column 4
    frontend.train()
    torch.manual_seed(0)
    starts = {float(frontend.crop(video)[0, 0, 0, 0]) for _ in range(60)}
    flipped = {s for s in starts if s >= CROP - 1}  # a flipped window starts at its last column
    assert len(starts) > 4 and flipped and starts - flipped
    assert max(starts) <= FRAME - 1 and min(starts) >= 0
    feats, lengths = frontend(torch.rand(2, 5, 1, FRAME, FRAME) * 255, torch.tensor([5, 3]))
    assert feats.shape == (2, 5, 24) and lengths.tolist() == [5, 3]
    with pytest.raises(ValueError, match="smaller than video_frontend_conf.crop_size=32"):
        frontend(torch.zeros(1, 2, 20, 20), torch.tensor([2]))


def test_fusion_batch_norm_ignores_padding_and_zeroes_it():
    fusion = MLPFusion(audio_size=4, video_size=3, hidden_units=16, output_size=5)
    audio, video = torch.randn(2, 6, 4), torch.randn(2, 6, 3)
    out = fusion(audio, video, torch.tensor([6, 4]))
    assert out.shape == (2, 6, 5)
    assert out[1, 4:].abs().sum() == 0
    changed = video.clone()
    changed[1, 4:] = 1e6  # padding content must not reach the statistics
    torch.testing.assert_close(fusion(audio, changed, torch.tensor([6, 4])), out)


def test_forward_backward_reaches_every_part(model):
    model.train()
    model.audio_dropout_prob = model.video_dropout_prob = 0.0  # both streams in this step, whatever the draw
    loss, stats, weight = model(**batch())
    assert torch.isfinite(loss).all() and float(weight) == 2
    assert stats["loss_ctc"] > 0 and stats["loss_att"] > 0
    loss.sum().backward()
    for name in ("frontend.stem.0.weight", "video_frontend.stem.0.weight", "fusion.linear1.weight",
                 "encoder.encoders.0.self_attn.linear_q.u", "decoder.decoders.0.feed_forward.w_1.u", "ctc.ctc_lo.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_streams_are_cut_to_the_shorter_per_utterance(model):
    model.eval()
    b = batch()
    with torch.no_grad():
        audio, video, lengths = model.encode_streams(b["speech"], b["speech_lengths"], b["video"], b["video_lengths"])
        enc, enc_lengths = model.encode(b["speech"], b["speech_lengths"], b["video"], b["video_lengths"])
    assert lengths.tolist() == [25, 17]  # min(25 audio, 26 video), min(18 audio, 17 video)
    assert audio.shape[:2] == video.shape[:2] == (2, 25)
    assert audio[1, 17:].abs().sum() == 0 and video[1, 17:].abs().sum() == 0
    assert enc.shape == (2, 25, 64) and enc_lengths.tolist() == [25, 17]


def test_missing_stream_equals_a_zeroed_stream_and_decodes(model):
    model.eval()
    b = batch()
    with torch.no_grad():
        audio_only, audio_lengths = model.encode(b["speech"], b["speech_lengths"], None, None)
        video_only, video_lengths = model.encode(None, None, b["video"], b["video_lengths"])
        audio, _, lengths = model.encode_streams(b["speech"], b["speech_lengths"], None, None)
        by_hand, _, _ = model.encoder(model.fusion(audio, torch.zeros(2, 25, 32), lengths), lengths)
    assert audio_lengths.tolist() == [25, 18] and video_lengths.tolist() == [26, 17]
    torch.testing.assert_close(audio_only, by_hand)
    for enc in (audio_only, video_only):
        assert torch.isfinite(enc).all()
        assert model.ctc.argmax(enc).shape == enc.shape[:2]  # greedy CTC decode runs
    with pytest.raises(ValueError, match="needs speech, video or both"):
        model.encode(None, None, None, None)


def test_modality_dropout_rates_and_what_it_zeroes(tmp_path):
    torch.manual_seed(0)
    model = build_avsr_model(tiny_config(tmp_path / "a.yaml", audio_dropout_prob=0.3, video_dropout_prob=0.2), vocab_size=8)
    drop_audio, drop_video = model.modality_dropout_masks(40000)
    assert abs(drop_audio.float().mean().item() - 0.3) < 0.01
    assert abs(drop_video.float().mean().item() - 0.2) < 0.01
    assert not (drop_audio & drop_video).any()

    b = batch()
    for probs, dropped in (((1.0, 0.0), "audio"), ((0.0, 1.0), "video")):
        model.audio_dropout_prob, model.video_dropout_prob = probs
        model.train()
        audio, video, _ = model.encode_streams(b["speech"], b["speech_lengths"], b["video"], b["video_lengths"])
        assert (audio.abs().sum() == 0) == (dropped == "audio")
        assert (video.abs().sum() == 0) == (dropped == "video")
        model.eval()  # never at test time
        audio, video, _ = model.encode_streams(b["speech"], b["speech_lengths"], b["video"], b["video_lengths"])
        assert audio.abs().sum() > 0 and video.abs().sum() > 0


def test_bad_modality_dropout_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"audio_dropout_prob \+ video_dropout_prob must be <= 1"):
        build_avsr_model(tiny_config(tmp_path / "b.yaml", audio_dropout_prob=0.6, video_dropout_prob=0.6), vocab_size=8)


def test_warmup_cosine_schedule():
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    scheduler = WarmupCosineLR(optimizer, steps_per_epoch=10, warmup_epochs=5, total_epochs=75)
    assert (scheduler.warmup_steps, scheduler.total_steps) == (50, 750)
    lrs = [scheduler.factor(s) * 1e-3 for s in (0, 49, 50, 400, 749, 800)]
    assert lrs[0] == pytest.approx(2e-5) and lrs[1] == pytest.approx(1e-3) and lrs[2] == pytest.approx(1e-3)
    assert lrs[3] == pytest.approx(0.5e-3)  # halfway through the 700 decay steps
    assert lrs[4] == pytest.approx(0.0, abs=1e-7) and lrs[5] == 0.0
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(4 * 2e-5)
