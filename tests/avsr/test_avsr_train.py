"""One epoch of real ESPnet training through avsr_train on generated wav + video npy, then avsr_inference."""
import pytest
import torch

from espnet_lrsms.bin import avsr_inference, avsr_train
from espnet_lrsms.lowrank import FactorizedLinear
from espnet_lrsms.avsr.inference import AVSRSpeech2Text

from avsr_test_data import tiny_config, write_av_dataset

TEXTS = ["ab cd", "ba dc", "ca bd", "dd ab"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("avsr")
    train = write_av_dataset(root / "train", TEXTS)
    config = tiny_config(root / "tiny.yaml", audio_dropout_prob=0.25, video_dropout_prob=0.25)
    out = root / "exp"
    data = []
    for split in ("train", "valid"):
        data += [
            f"--{split}_data_path_and_name_and_type", f"{train}/wav.scp,speech,sound",
            f"--{split}_data_path_and_name_and_type", f"{train}/video.scp,video,video_npy",
            f"--{split}_data_path_and_name_and_type", f"{train}/text,text,text",
            f"--{split}_shape_file", f"{train}/speech_shape",
        ]
    avsr_train.main([
        "--config", str(config), "--output_dir", str(out), "--ngpu", "0", "--seed", "0",
        "--token_type", "char", "--token_list", str(root / "tokens.txt"), "--use_preprocessor", "true",
        *data, "--use_tensorboard", "false", "--batch_type", "unsorted", "--batch_size", "2",
        "--max_epoch", "1", "--num_att_plot", "0", "--num_workers", "0",
        "--scheduler_conf", "warmup_epochs=0.5", "--scheduler_conf", "total_epochs=5",
    ])
    return root, train, out


def test_one_epoch_trains_and_saves_a_lowrank_av_checkpoint(trained):
    _, _, out = trained
    state = torch.load(out / "1epoch.pth", map_location="cpu")
    assert "video_frontend.stem.0.weight" in state and "fusion.linear1.weight" in state
    assert "encoder.encoders.0.self_attn.linear_q.u" in state
    assert (out / "0epoch.pth").is_file()  # the project's trainer saved W(0)
    reporter = torch.load(out / "checkpoint.pth", map_location="cpu", weights_only=False)["reporter"]
    train_stats = reporter["stats"][1]["train"]
    assert train_stats["loss"] > 0 and torch.isfinite(torch.tensor(train_stats["loss"]))
    assert reporter["stats"][1]["valid"]["acc"] >= 0


@pytest.mark.parametrize("modality", ["av", "audio", "video"])
def test_inference_decodes_with_both_or_one_stream(trained, modality):
    _, train, out = trained
    decode = out / f"decode_{modality}"
    avsr_inference.main([
        "--asr_train_config", str(out / "config.yaml"), "--asr_model_file", str(out / "1epoch.pth"),
        "--output_dir", str(decode), "--beam_size", "2", "--ctc_weight", "0.3", "--maxlenratio", "0.5",
        "--data_path_and_name_and_type", f"{train}/wav.scp,speech,sound",
        "--data_path_and_name_and_type", f"{train}/video.scp,video,video_npy",
        "--modality", modality, "--num_workers", "0",
    ])
    for name in ("token", "token_int", "score"):
        lines = (decode / "1best_recog" / name).read_text().splitlines()
        assert [line.split(maxsplit=1)[0] for line in lines] == ["utt000", "utt001", "utt002", "utt003"]


def test_speech2text_zeroed_audio_and_missing_video(trained):
    _, train, out = trained
    import numpy as np
    import soundfile

    s2t = AVSRSpeech2Text(str(out / "config.yaml"), str(out / "1epoch.pth"), beam_size=2, ctc_weight=0.3,
                          maxlenratio=0.5)
    assert any(isinstance(m, FactorizedLinear) for m in s2t.asr_model.modules())
    wave, _ = soundfile.read(train / "wav" / "utt000.wav", dtype="float32")
    video = np.load(train / "video" / "utt000.npy")
    for kwargs in (dict(speech=np.zeros_like(wave), video=video), dict(speech=wave), dict(video=video)):
        results = s2t(**kwargs)
        assert len(results) == 1
        text, tokens, token_int, hyp = results[0]
        assert all(1 <= t < 8 for t in token_int) and np.isfinite(float(hyp.score))
    with pytest.raises(ValueError, match="nothing to decode"):
        s2t()


def test_too_short_utterance_decodes_to_an_empty_hypothesis(trained, tmp_path, caplog):
    """ESPnet's asr_inference writes an empty hypothesis for a TooShortUttError and goes on; so does AVSR's."""
    import shutil

    import numpy as np
    import soundfile

    _, train, out = trained
    data = tmp_path / "data"
    data.mkdir()
    soundfile.write(data / "short.wav", np.zeros(304, dtype=np.float32), 16000)  # 19 ms: no 40 ms audio frame
    np.save(data / "short.npy", np.load(train / "video" / "utt000.npy")[:1])
    shutil.copy(train / "wav" / "utt000.wav", data / "utt000.wav")
    (data / "wav.scp").write_text(f"short {data / 'short.wav'}\nutt000 {data / 'utt000.wav'}\n")
    (data / "video.scp").write_text(f"short {data / 'short.npy'}\nutt000 {train / 'video' / 'utt000.npy'}\n")
    decode = tmp_path / "decode"
    avsr_inference.main([
        "--asr_train_config", str(out / "config.yaml"), "--asr_model_file", str(out / "1epoch.pth"),
        "--output_dir", str(decode), "--beam_size", "2", "--ctc_weight", "0.3", "--maxlenratio", "0.5", "--nbest", "2",
        "--data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
        "--data_path_and_name_and_type", f"{data}/video.scp,video,video_npy", "--num_workers", "0",
    ])
    assert "Utterance ['short'] resnet1d needs at least 640 samples" in caplog.text
    for n in (1, 2):
        token_int = dict(line.split(maxsplit=1) for line in (decode / f"{n}best_recog" / "token_int").read_text().splitlines())
        assert token_int["short"] == "2" and "utt000" in token_int  # ESPnet's empty hypothesis; the next one decoded
    assert (decode / "1best_recog" / "score").read_text().startswith("short 0.0\n")


def test_packed_model_transcribes_an_mp4_in_one_call(trained, tmp_path):
    """Stage 14's pack, loaded by MP4Transcriber: an mp4 (face found, mouth cropped as in stage 1) or
    its streams as arrays give the same n-best, with each modality."""
    import numpy as np

    from espnet_lrsms.bin import pack
    from espnet_lrsms.recipe.avsr_data_prep import RoiSettings, prepare_av_set
    from espnet_lrsms.avsr.transcriber import MP4Transcriber

    from avsr_test_data import REPO, assert_ramp_at_25_fps, write_ramp_clip

    _, _, out = trained
    (out / "RESULTS.md").write_text("# results\n")
    zip_path = tmp_path / "model.zip"
    pack.main(["asr", "--asr_train_config", str(out / "config.yaml"), "--asr_model_file", str(out / "1epoch.pth"),
               "--option", str(out / "RESULTS.md"), "--outpath", str(zip_path)])
    clip = sorted((REPO / "demo" / "lrs3" / "test").glob("*/*.mp4"))[0]
    corpus = tmp_path / "lrs3" / "test" / "spk"
    corpus.mkdir(parents=True)
    (corpus / "00000.mp4").symlink_to(clip)
    (corpus / "00000.txt").write_text("Text:  ONE\n")
    stage1 = prepare_av_set(tmp_path / "lrs3", "test", tmp_path / "data", RoiSettings(method="detect"))
    stage1_rois = np.load((stage1 / "video.scp").read_text().split()[1])
    s2t = MP4Transcriber.from_pack(zip_path, tmp_path / "unpacked", beam_size=2, ctc_weight=0.3, maxlenratio=0.5)
    assert isinstance(s2t.transcribe(clip), str)
    speech, rois = s2t.streams_of_mp4(clip)
    np.testing.assert_array_equal(rois, stage1_rois)  # the crops stage 1 trains on
    for modality in ("av", "audio", "video"):
        s2t.modality = modality
        given = (None if modality == "video" else speech, None if modality == "audio" else rois)
        assert s2t(speech=given[0], video=given[1])[0][2] == s2t(speech=speech, video=rois)[0][2]
    s2t.modality = "audio"
    assert s2t.streams_of_mp4(clip)[1] is None  # neither frames nor faces decoded
    s2t.modality, s2t.mouth_crops = "video", True  # a 30 fps mouth video: brought to 25 fps as stage 1 does
    write_ramp_clip(tmp_path / "ramp30.mp4", fps=30)
    assert_ramp_at_25_fps(s2t.streams_of_mp4(tmp_path / "ramp30.mp4")[1], source_fps=30)
    with pytest.raises(ValueError, match="modality"):
        s2t.modality = "lips"


def test_sweep_scores_wer_cer_and_ter_with_the_bpe_model(trained, tmp_path):
    """Stage 12's sweep writes score_ter (the ASR recipe's scorer, in the bpe model's pieces) next to WER and
    CER, and RESULTS.md gets the TER table as the ASR recipe's does."""
    import shutil

    import sentencepiece

    from espnet_lrsms.bin import avsr_snr_sweep
    from espnet_lrsms.scoring.results import read_sum_avg

    _, train, out = trained
    data = tmp_path / "data" / "test"
    shutil.copytree(train, data)
    (data / "utt2spk").write_text("".join(f"utt{i:03d} spk\n" for i in range(len(TEXTS))))
    (tmp_path / "corpus.txt").write_text("\n".join(TEXTS * 10) + "\n")
    sentencepiece.SentencePieceTrainer.train(
        input=str(tmp_path / "corpus.txt"), model_prefix=str(tmp_path / "bpe"), vocab_size=12, model_type="unigram",
        character_coverage=1.0, minloglevel=2,
    )
    exp = tmp_path / "exp"
    assert avsr_snr_sweep.main([
        "--exp_dir", str(exp), "--inference_tag", "decode", "--asr_train_config", str(out / "config.yaml"),
        "--asr_model_file", str(out / "1epoch.pth"), "--data_root", str(tmp_path / "data"), "--test_sets", "test",
        "--bpemodel", str(tmp_path / "bpe.model"), "--beam_size", "2", "--ctc_weight", "0.3", "--maxlenratio", "0.5",
    ]) == 0
    model = sentencepiece.SentencePieceProcessor(model_file=str(tmp_path / "bpe.model"))
    tokens = sum(len(model.encode(text, out_type=str)) for text in TEXTS)
    assert tokens != sum(len(text.split()) for text in TEXTS)  # pieces, not words
    for metric, units in (("wer", 8), ("cer", sum(len(text) for text in TEXTS)), ("ter", tokens)):
        assert read_sum_avg(exp / "decode" / "test" / f"score_{metric}" / "result.txt")[:2] == (4, units), metric
    results = (exp / "RESULTS.md").read_text()
    ter = read_sum_avg(exp / "decode" / "test" / "score_ter" / "result.txt")[2]
    assert results.index("### WER") < results.index("### CER") < results.index("### TER")
    assert f"|decode/test|4|{tokens}|" + "|".join(f"{v:.1f}" for v in ter) + "|" in results
    assert avsr_snr_sweep.main([
        "--exp_dir", str(exp), "--asr_train_config", str(out / "config.yaml"), "--asr_model_file",
        str(out / "1epoch.pth"), "--data_root", str(tmp_path / "data"), "--test_sets", "test",
        "--bpemodel", str(tmp_path / "none.model"),
    ]) == 1  # a missing bpe model stops before decoding
