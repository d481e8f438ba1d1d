"""Stage 1 on the bundled demo corpora, and every bad-input case named with what is at fault."""
import logging
import shutil

import numpy as np
import pytest
import soundfile

from espnet_lrsms.recipe.data_prep import DataPrepError
from espnet_lrsms.recipe.librispeech import scan_librispeech
from espnet_lrsms.recipe.lrs3 import espnet_dev_speakers, lrs3_text, scan_lrs3
from espnet_lrsms.recipe.prepare_data import prepare_lrs3, prepare_set

from conftest import REPO

DEMO_LIBRI = REPO / "demo" / "librispeech"
DEMO_LRS3 = REPO / "demo" / "lrs3"


def _lines(path):
    return path.read_text().splitlines()


def test_librispeech_demo_sets(tmp_path):
    out = prepare_set(scan_librispeech, DEMO_LIBRI, "train_clean_100", tmp_path, nj=2)
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
    out = prepare_set(scan_lrs3, DEMO_LRS3, "test", tmp_path, nj=2)
    entries = [line.split() for line in _lines(out / "wav.scp")]
    assert len(entries) == 12
    flac = entries[0][1]
    info = soundfile.info(flac)
    assert info.samplerate == 16000 and info.channels == 1 and info.frames > 8000
    mtime = (tmp_path / "audio" / "test").stat().st_mtime_ns, __import__("os").stat(flac).st_mtime_ns
    prepare_set(scan_lrs3, DEMO_LRS3, "test", tmp_path, nj=2)  # re-run: decoded audio is reused
    assert __import__("os").stat(flac).st_mtime_ns == mtime[1]
    assert _lines(out / "text")[0].split(maxsplit=1)[1].split()[0].isupper()


def test_lrs3_dev_is_espnets_speaker_split_of_trainval():
    # ESPnet's egs2/lrs3/asr1: np.random.seed(0); np.random.shuffle(speaker folders); the first
    # int(0.92 n) train, the rest dev. Our function on a sorted list equals that procedure.
    speakers = [f"spk{i:04d}" for i in range(4004)]
    order = list(speakers)
    np.random.seed(0)
    np.random.shuffle(order)
    assert espnet_dev_speakers(speakers) == sorted(order[int(0.92 * 4004):])
    assert len(espnet_dev_speakers(speakers)) == 321
    dev_speakers = frozenset(espnet_dev_speakers(sorted(p.name for p in (DEMO_LRS3 / "trainval").iterdir())))
    assert dev_speakers == {"trspk04engbscot"}  # 6 demo speakers: int(0.92 * 6) = 5 train, 1 dev
    sets = {name: scan_lrs3(DEMO_LRS3, name) for name in ("train", "dev", "val", "trainval", "pretrain")}
    ids = {name: {u.uttid for u in utts} for name, utts in sets.items()}
    assert {u.speaker for u in sets["dev"]} == dev_speakers and len(ids["dev"]) == 20 and ids["val"] == ids["dev"]
    assert ids["train"] == ids["pretrain"] | (ids["trainval"] - ids["dev"]) and len(ids["train"]) == 130
    assert not {u.speaker for u in sets["train"]} & dev_speakers
    assert all("_pretrain_" in uttid for uttid in ids["pretrain"])


def _small_lrs3(root, layout):
    """``layout``: (split, speaker, clip, transcript) per clip; the audio and video are demo test clips."""
    demo = sorted((DEMO_LRS3 / "test").glob("*/*.mp4"))
    for i, (split, speaker, clip, text) in enumerate(layout):
        folder = root / split / speaker
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(demo[i % len(demo)], folder / f"{clip}.mp4")
        (folder / f"{clip}.txt").write_text(f"Text:  {text}\nConf:  4\n")
    return root


def test_dev_speakers_from_a_file_are_kept_in_data_and_reused(tmp_path, caplog):
    root = _small_lrs3(tmp_path / "lrs3", [("trainval", s, "50001", "ONE") for s in ("a", "b", "c")]
                       + [("pretrain", "b", "00001", "TWO")])
    data = tmp_path / "data"
    listing = tmp_path / "spk2utt"
    listing.write_text("# my split\nb b_50001\nzz zz_50001\n")  # an spk2utt: first column; zz is unknown
    with caplog.at_level(logging.WARNING):
        train, dev = prepare_lrs3("asr", root, ["train", "dev"], data, valid_speakers=listing)
    assert "1 of 2 are not in" in caplog.text
    assert [line.split()[0] for line in _lines(dev / "text")] == ["b_50001"]
    assert [line.split()[0] for line in _lines(train / "text")] == ["a_50001", "c_50001"]  # b's pretrain clip too left out
    kept = data / "lrs3_dev_speakers.txt"
    assert [line for line in _lines(kept) if not line.startswith("#")] == ["b", "zz"]
    # a later stage 1 without the option uses the kept list, not ESPnet's rule (which would pick one of a, b, c)
    (dev,) = prepare_lrs3("asr", root, ["dev"], data)
    assert [line.split()[0] for line in _lines(dev / "text")] == ["b_50001"]
    listing.write_text("x\ny\n")
    with pytest.raises(DataPrepError, match=f"none of the 2 is a speaker folder of {root / 'trainval'}"):
        prepare_lrs3("asr", root, ["dev"], data, valid_speakers=listing)
    # no list anywhere: ESPnet's rule, written down
    (dev,) = prepare_lrs3("asr", root, ["dev"], tmp_path / "data2")
    assert "ESPnet's egs2/lrs3/asr1 rule" in _lines(tmp_path / "data2" / "lrs3_dev_speakers.txt")[0]
    assert len(_lines(dev / "text")) == 1


def test_lrs3_transcript_markers_are_removed(tmp_path):
    path = tmp_path / "00001.txt"
    for content, words in [("Text:  {LG} WELL {NS}I THINK{LG}\nConf:  4\n", "WELL I THINK"),
                           ("Text:  {LG}\n", None), ("Conf:  4\n", None)]:
        path.write_text(content)
        assert lrs3_text(path) == words, content


@pytest.fixture
def small_corpus(tmp_path):
    """One speaker of the demo's dev-clean, copied so that it can be broken."""
    root = tmp_path / "corpus"
    shutil.copytree(DEMO_LIBRI / "LibriSpeech" / "dev-clean" / "100", root / "LibriSpeech" / "dev-clean" / "100")
    return root, root / "LibriSpeech" / "dev-clean" / "100" / "1001"


def test_missing_root_set_and_empty_set(tmp_path, small_corpus):
    with pytest.raises(DataPrepError, match=f"corpus root {tmp_path / 'nowhere'} does not exist"):
        prepare_set(scan_librispeech, tmp_path / "nowhere", "dev_clean", tmp_path / "data")
    root, _ = small_corpus
    with pytest.raises(DataPrepError, match="set test_other: .*LibriSpeech/test-other does not exist"):
        prepare_set(scan_librispeech, root, "test_other", tmp_path / "data")
    (root / "LibriSpeech" / "test-clean").mkdir()
    with pytest.raises(DataPrepError, match="set test_clean: no utterances found"):
        prepare_set(scan_librispeech, root, "test_clean", tmp_path / "data")


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
        prepare_set(scan_librispeech, root, "dev_clean", tmp_path / "data", on_error="stop")
    message = str(err.value)
    assert ("set dev_clean: 4 of 5 utterances have problems "
            "(empty_audio: 1, no_audio: 1, no_transcript: 1, unreadable: 1)") in message
    assert "100-1001-0000: zero-length audio" in message
    assert not (tmp_path / "data" / "dev_clean").exists()  # nothing a later stage would take as done
    listing = (tmp_path / "data" / "dev_clean.failed" / "skipped.txt").read_text()
    assert "100-1001-0001\tunreadable\tunreadable audio" in listing
    assert "100-1001-0002\tno_audio\ttranscript without audio" in listing
    assert "100-1001-0099\tno_transcript\taudio without transcript" in listing


def test_bad_utterances_are_skipped_counted_and_listed(tmp_path, small_corpus, caplog):
    root, chapter = small_corpus
    _break(chapter)
    with caplog.at_level(logging.WARNING):
        out = prepare_set(scan_librispeech, root, "dev_clean", tmp_path / "data", on_error="skip")
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
    out = prepare_set(scan_lrs3, tmp_path / "lrs3", "test", tmp_path / "data", on_error="skip")
    assert "spk_00000\tno_audio\t" in (out / "skipped.txt").read_text()
    assert "no audio track" in (out / "skipped.txt").read_text()
    assert len(_lines(out / "text")) == 6  # the good speaker's 6 demo clips


# ---- duplicated ids (issue 17 item 5)

def test_a_duplicated_librispeech_id_stops_naming_both_files_or_is_dropped(tmp_path, small_corpus, caplog):
    root, chapter = small_corpus
    other = root / "LibriSpeech" / "dev-other" / "100" / "1001"  # the same id in a second subset of `dev`
    other.mkdir(parents=True)
    shutil.copy(chapter / "100-1001-0003.flac", other)
    (other / "100-1001.trans.txt").write_text("100-1001-0003 ANOTHER TRANSCRIPT\n")
    trans = chapter / "100-1001.trans.txt"
    with pytest.raises(DataPrepError) as err:
        prepare_set(scan_librispeech, root, "dev", tmp_path / "data", on_error="stop")
    message = str(err.value)
    assert "set dev: 1 of 4 utterances have problems (duplicate_id: 1)" in message
    assert f"100-1001-0003: utterance id in {trans}:4 and {other / '100-1001.trans.txt'}:1" in message
    with caplog.at_level(logging.WARNING):
        out = prepare_set(scan_librispeech, root, "dev", tmp_path / "data", on_error="skip")
    assert [line.split()[0] for line in _lines(out / "text")] == ["100-1001-0000", "100-1001-0001", "100-1001-0002"]
    assert _lines(out / "skipped.txt")[0].startswith("100-1001-0003\tduplicate_id\tutterance id in ")
    assert "set dev: skipped 1 of 4 utterances (duplicate_id: 1)" in caplog.text


def test_the_same_id_twice_in_one_transcript_file(tmp_path, small_corpus):
    root, chapter = small_corpus
    trans = chapter / "100-1001.trans.txt"
    trans.write_text(trans.read_text() + "100-1001-0001 THE SAME ID AGAIN\n")
    with pytest.raises(DataPrepError, match=f"100-1001-0001: utterance id in {trans}:2 and {trans}:5"):
        prepare_set(scan_librispeech, root, "dev_clean", tmp_path / "data")
    stray = chapter.parent / "2002" / "100-1001-0002.flac"  # one transcript line, two audio files
    stray.parent.mkdir()
    shutil.copy(chapter / "100-1001-0002.flac", stray)
    out = prepare_set(scan_librispeech, root, "dev_clean", tmp_path / "data", on_error="skip")
    skipped = dict(line.split("\t", 1) for line in _lines(out / "skipped.txt"))
    assert skipped["100-1001-0002"] == f"duplicate_id\tutterance id of {chapter / '100-1001-0002.flac'} and {stray}"


def test_a_clip_in_both_pretrain_and_trainval_keeps_both_with_distinct_ids(tmp_path):
    root = _small_lrs3(tmp_path / "lrs3", [("pretrain", "spk", "00000", "ONE {LG}"), ("trainval", "spk", "00000", "TWO"),
                                          ("trainval", "other", "00001", "{LG}"), ("trainval", "other", "00002", "ONE")])
    speakers = tmp_path / "dev_speakers"
    speakers.write_text("other\n")
    (train,) = prepare_lrs3("asr", root, ["train"], tmp_path / "data", valid_speakers=speakers)
    text = dict(line.split(maxsplit=1) for line in _lines(train / "text"))
    assert text == {"spk_00000": "TWO", "spk_pretrain_00000": "ONE"}
    wavs = {line.split()[1] for line in _lines(train / "wav.scp")}
    assert len(wavs) == 2  # two cached audio files, not one overwritten
    (dev,) = prepare_lrs3("asr", root, ["dev"], tmp_path / "data", on_error="skip")
    assert "other_00001\tno_transcript\t" in (dev / "skipped.txt").read_text()  # nothing left once {LG} is removed


# ---- audio that would fail in training (issue 17 item 8)

def test_stereo_and_truncated_flac_are_bad_input(tmp_path, small_corpus):
    root, chapter = small_corpus
    mono, rate = soundfile.read(chapter / "100-1001-0000.flac", dtype="int16")
    soundfile.write(chapter / "100-1001-0000.flac", np.stack([mono, mono], axis=1), rate)
    truncated = chapter / "100-1001-0001.flac"
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # the header still announces every sample
    assert soundfile.info(truncated).frames > 0
    out = prepare_set(scan_librispeech, root, "dev_clean", tmp_path / "data", on_error="skip")
    skipped = {line.split("\t")[0]: line.split("\t")[1:] for line in _lines(out / "skipped.txt")}
    assert skipped["100-1001-0000"] == ["channels", f"2 channels, expected mono ({chapter / '100-1001-0000.flac'})"]
    kind, message = skipped["100-1001-0001"]
    assert kind == "truncated" and message.startswith(f"truncated or damaged audio ({truncated}): ")
    assert "lost sync" in message
    assert len(_lines(out / "text")) == 2


# ---- ESPnet's duration filter, on the sets named (issue 17 item 8)

def test_duration_filter_leaves_out_and_lists_short_and_long_utterances(tmp_path, small_corpus, caplog):
    from espnet_lrsms.recipe.duration_filter import DurationFilter

    root, chapter = small_corpus
    soundfile.write(chapter / "100-1001-0000.flac", np.full(304, 0.1, dtype=np.float32), 16000)  # 19 ms
    lengths = {f.stem: soundfile.info(f).frames for f in sorted(chapter.glob("*.flac"))}
    longest = max(lengths, key=lengths.get)
    limit = lengths[longest] / 16000  # ESPnet keeps n < int(max·fs): the longest one goes
    with caplog.at_level(logging.INFO):
        out = prepare_set(scan_librispeech, root, "dev_clean", tmp_path / "data", durations=DurationFilter(0.1, limit))
    filtered = dict(line.split("\t") for line in _lines(out / "filtered.txt"))
    assert filtered == {
        "100-1001-0000": "0.019 s, not above --min_wav_duration 0.1",
        longest: f"{limit:.3f} s, not below --max_wav_duration {limit:g}",
    }
    assert sorted(line.split()[0] for line in _lines(out / "text")) == sorted(set(lengths) - set(filtered))
    assert "set dev_clean: 2 utterances outside 0.1-" in caplog.text and str(out / "filtered.txt") in caplog.text
    assert not (out / "skipped.txt").exists()
    with pytest.raises(DataPrepError, match="need 0 <= min < max"):
        DurationFilter(5, 1)


def test_one_command_filters_only_the_sets_named(tmp_path, small_corpus, caplog):
    from espnet_lrsms.bin.prepare_data import main

    root, chapter = small_corpus
    soundfile.write(chapter / "100-1001-0000.flac", np.full(304, 0.1, dtype=np.float32), 16000)
    shutil.copytree(root / "LibriSpeech" / "dev-clean", root / "LibriSpeech" / "test-clean")
    data = tmp_path / "data"
    common = ["--corpus_root", str(root), "--data_dir", str(data), "--nj", "1"]
    assert main(["librispeech", *common, "--sets", "dev_clean", "test_clean", "--filter_sets", "dev_clean"]) == 0
    assert len(_lines(data / "dev_clean" / "text")) == 3 and _lines(data / "dev_clean" / "filtered.txt")[0].startswith("100-1001-0000\t")
    assert len(_lines(data / "test_clean" / "text")) == 4 and not (data / "test_clean" / "filtered.txt").exists()
    assert main(["librispeech", *common, "--sets", "dev_clean", "--filter_sets", "train_clean_100"]) == 1
    assert "--filter_sets train_clean_100: not among --sets dev_clean" in caplog.text
    for corpus_options in (["librispeech"], ["lrs3"], ["librispeech", "--task", "avsr"]):  # AVSR: LRS3's, with --task avsr
        with pytest.raises(SystemExit):
            main([*corpus_options, *common, "--sets", "dev_clean", "--landmarks_dir", str(tmp_path)])
    with pytest.raises(SystemExit):  # the corpus is the subcommand; no --corpus
        main(["--corpus", "librispeech", *common, "--sets", "dev_clean"])
