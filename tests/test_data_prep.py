"""Stage 1 on the bundled demo corpora, and every bad-input case named with what is at fault."""
import logging
import shutil
from fractions import Fraction

import numpy as np
import pytest
import soundfile

from espnet_lrsms.recipe.data_prep import DataPrepError, prepare_set

from conftest import REPO

DEMO_LIBRI = REPO / "demo" / "librispeech"
DEMO_LRS3 = REPO / "demo" / "lrs3"


def _lines(path):
    return path.read_text().splitlines()


def test_librispeech_demo_sets(tmp_path):
    out = prepare_set("librispeech", DEMO_LIBRI, "train_clean_100", tmp_path, nj=2)
    keys = [line.split()[0] for line in _lines(out / "wav.scp")]
    assert len(keys) == 180 and keys == sorted(keys)
    assert [line.split()[0] for line in _lines(out / "text")] == keys
    assert _lines(out / "utt2spk")[0] == "100-1000-0000 100"
    assert len(_lines(out / "spk2utt")) == 6
    first_audio = _lines(out / "wav.scp")[0].split()[1]
    assert soundfile.info(first_audio).samplerate == 16000
    assert _lines(out / "text")[0].split(maxsplit=1)[1].replace(" ", "").isalpha()
    assert not (out / "skipped.txt").exists()


def test_lrs3_demo_audio_is_decoded_from_mp4_and_cached(tmp_path):
    out = prepare_set("lrs3", DEMO_LRS3, "test", tmp_path, nj=2)
    entries = [line.split() for line in _lines(out / "wav.scp")]
    assert len(entries) == 12
    flac = entries[0][1]
    info = soundfile.info(flac)
    assert info.samplerate == 16000 and info.channels == 1 and info.frames > 8000
    mtime = (tmp_path / "audio" / "test").stat().st_mtime_ns, __import__("os").stat(flac).st_mtime_ns
    prepare_set("lrs3", DEMO_LRS3, "test", tmp_path, nj=2)  # re-run: decoded audio is reused
    assert __import__("os").stat(flac).st_mtime_ns == mtime[1]
    assert _lines(out / "text")[0].split(maxsplit=1)[1].split()[0].isupper()


def test_lrs3_train_and_val_partition_trainval(tmp_path):
    train = {line.split()[0] for line in _lines(prepare_set("lrs3", DEMO_LRS3, "train", tmp_path) / "text")}
    val = {line.split()[0] for line in _lines(prepare_set("lrs3", DEMO_LRS3, "val", tmp_path) / "text")}
    trainval = {line.split()[0] for line in _lines(prepare_set("lrs3", DEMO_LRS3, "trainval", tmp_path) / "text")}
    assert val and not (train & val) and val <= trainval and trainval - val <= train


@pytest.fixture
def small_corpus(tmp_path):
    """One speaker of the demo's dev-clean, copied so that it can be broken."""
    root = tmp_path / "corpus"
    shutil.copytree(DEMO_LIBRI / "LibriSpeech" / "dev-clean" / "100", root / "LibriSpeech" / "dev-clean" / "100")
    return root, root / "LibriSpeech" / "dev-clean" / "100" / "1001"


def test_missing_root_set_and_empty_set(tmp_path, small_corpus):
    with pytest.raises(DataPrepError, match=f"corpus root {tmp_path / 'nowhere'} does not exist"):
        prepare_set("librispeech", tmp_path / "nowhere", "dev_clean", tmp_path / "data")
    root, _ = small_corpus
    with pytest.raises(DataPrepError, match="set test_other: .*LibriSpeech/test-other does not exist"):
        prepare_set("librispeech", root, "test_other", tmp_path / "data")
    (root / "LibriSpeech" / "test-clean").mkdir()
    with pytest.raises(DataPrepError, match="set test_clean: no utterances found"):
        prepare_set("librispeech", root, "test_clean", tmp_path / "data")


def _break(chapter):
    """Four kinds of broken utterance in one chapter."""
    # zero length (an empty FLAC stream is unreadable to libsndfile; an empty WAV stream reads as 0 frames)
    soundfile.write(chapter / "100-1001-0000.flac", np.zeros(0, dtype=np.float32), 16000, format="WAV")
    (chapter / "100-1001-0001.flac").write_bytes(b"not audio at all")  # unreadable
    (chapter / "100-1001-0002.flac").unlink()  # transcript without audio
    shutil.copy(chapter / "100-1001-0003.flac", chapter / "100-1001-0099.flac")  # audio without transcript


def test_bad_utterances_stop_the_stage_naming_them(tmp_path, small_corpus):
    root, chapter = small_corpus
    _break(chapter)
    with pytest.raises(DataPrepError) as err:
        prepare_set("librispeech", root, "dev_clean", tmp_path / "data", on_error="stop")
    message = str(err.value)
    assert "set dev_clean: 4 of 5 utterances have problems" in message
    assert "100-1001-0000: zero-length audio" in message
    assert not (tmp_path / "data" / "dev_clean").exists()  # nothing a later stage would take as done
    listing = (tmp_path / "data" / "dev_clean.failed" / "skipped.txt").read_text()
    assert "100-1001-0001\tunreadable audio" in listing
    assert "100-1001-0002\ttranscript without audio" in listing
    assert "100-1001-0099\taudio without transcript" in listing


def test_bad_utterances_are_skipped_counted_and_listed(tmp_path, small_corpus, caplog):
    root, chapter = small_corpus
    _break(chapter)
    with caplog.at_level(logging.WARNING):
        out = prepare_set("librispeech", root, "dev_clean", tmp_path / "data", on_error="skip")
    assert [line.split()[0] for line in _lines(out / "text")] == ["100-1001-0003"]
    assert len(_lines(out / "skipped.txt")) == 4
    assert "set dev_clean: skipped 4 of 5 utterances" in caplog.text
    assert str(out / "skipped.txt") in caplog.text


def test_mp4_without_audio_track(tmp_path):
    import av

    clip = tmp_path / "lrs3" / "test" / "spk"
    clip.mkdir(parents=True)
    with av.open(str(clip / "00000.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 10 * i, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    (clip / "00000.txt").write_text("Text:  HELLO\n")
    shutil.copytree(DEMO_LRS3 / "test" / sorted(p.name for p in (DEMO_LRS3 / "test").iterdir())[0], clip.parent / "good")
    out = prepare_set("lrs3", tmp_path / "lrs3", "test", tmp_path / "data", on_error="skip")
    assert "spk_00000\t" in (out / "skipped.txt").read_text()
    assert "no audio track" in (out / "skipped.txt").read_text()
    assert len(_lines(out / "text")) == 6  # the good speaker's 6 demo clips
