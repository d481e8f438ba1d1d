"""Stage 3 of both recipes is one command: speech/text shapes per data directory, video shapes where there is video."""
import sentencepiece
import soundfile

from espnet_lrsms.bin import make_shapes

from conftest import write_tone_dataset


def test_one_command_writes_audio_and_audio_visual_shapes(tmp_path):
    audio = write_tone_dataset(tmp_path / "train", 6, seed=1)
    av = write_tone_dataset(tmp_path / "val", 3, seed=2)
    keys = [line.split()[0] for line in (av / "wav.scp").read_text().splitlines()]
    (av / "utt2num_video_frames").write_text("".join(f"{k}\t{20 + i}\n" for i, k in enumerate(keys)))
    sentencepiece.SentencePieceTrainer.train(
        input=str(audio / "text"), model_prefix=str(tmp_path / "bpe"), vocab_size=40, model_type="unigram",
        hard_vocab_limit=False, minloglevel=2,
    )
    (tmp_path / "tokens.txt").write_text("".join(f"t{i}\n" for i in range(15)))
    assert make_shapes.main([
        "--bpemodel", str(tmp_path / "bpe.model"), "--token_list", str(tmp_path / "tokens.txt"), "--roi_size", "88",
        "--pair", str(audio), str(tmp_path / "stats" / "train"), "--pair", str(av), str(tmp_path / "stats" / "valid"),
    ]) == 0
    train, valid = tmp_path / "stats" / "train", tmp_path / "stats" / "valid"
    first = (audio / "wav.scp").read_text().split()[1]
    assert (train / "speech_shape").read_text().splitlines()[0] == f"utt000 {soundfile.info(first).frames}"
    assert all(line.endswith(",15") for line in (train / "text_shape.bpe").read_text().splitlines())
    assert not (train / "video_shape").exists()
    assert (valid / "video_shape").read_text().splitlines() == [f"{k} {20 + i},88,88" for i, k in enumerate(keys)]


def test_missing_data_directory_fails(tmp_path):
    assert make_shapes.main(["--bpemodel", "x", "--token_list", "y", "--pair", str(tmp_path / "none"), str(tmp_path / "o")]) == 1
