"""ESPnet's --token_type char and word (stage 5's token list, stage 10's shapes, training, decoding, scoring) and
ESPnet's text cleaning of the training text (--cleaner, --nlsyms_txt)."""
import os
import re
from collections import Counter
import shutil
import subprocess

import pytest

from espnet_lrsms.bin import lm_prepare_text, make_shapes, train_tokenizer
from espnet_lrsms.recipe.shapes import write_shapes
from espnet_lrsms.recipe.tokenizer import write_token_list

from conftest import LIBRI_RECIPE, REPO, run_recipe

AVSR_RECIPE = REPO / "egs2" / "lrs3" / "avsr1_lrsms"


def _lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def _text(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def test_char_list_is_the_characters_of_the_cleaned_text(tmp_path):
    """ESPnet's order: <blank> 0, <unk> 1, the characters by frequency, <sos/eos> last; the tacotron
    cleaner (upper case, numbers and abbreviations spelt out) applied first; utterances of every text."""
    a = _text(tmp_path / "a" / "text", ["u1 dr. smith paid 2", "u2 mr. brown"])
    b = _text(tmp_path / "b" / "text", ["u3 zz", "u4"])  # an utterance without words is left out
    tokens = _lines(write_token_list([a, b], tmp_path / "char", "char", cleaner="tacotron"))
    cleaned = ["DOCTOR SMITH PAID TWO", "MISTER BROWN", "ZZ"]
    chars = Counter(c.replace(" ", "_") for line in cleaned for c in line)
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
    assert sorted(tokens[2:-1]) == sorted(c.replace("_", "<space>") for c in chars) and len(chars) == 17
    counts = [chars[t.replace("<space>", "_")] for t in tokens[2:-1]]
    assert counts == sorted(counts, reverse=True) and counts[0] == 4 and counts[-1] == 1  # by frequency


def test_word_list_and_nlsyms_kept_whole(tmp_path):
    nlsyms = _text(tmp_path / "nlsyms.txt", ["<noise>", "[laugh]"])
    text = _text(tmp_path / "text", ["u1 ab <noise> ba ab", "u2 ab[laugh] cd", "u3 ab"])
    words = _lines(write_token_list([text], tmp_path / "word", "word", non_linguistic_symbols=nlsyms))
    assert words == ["<blank>", "<unk>", "ab", "<noise>", "ba", "ab[laugh]", "cd", "<sos/eos>"]
    chars = _lines(write_token_list([text], tmp_path / "char", "char", non_linguistic_symbols=nlsyms))
    assert chars[:2] == ["<blank>", "<unk>"] and chars[-1] == "<sos/eos>"
    assert sorted(chars[2:-1]) == sorted(["a", "b", "c", "d", "<space>", "<noise>", "[laugh]"])
    # and the shape files count a symbol as one token, as ESPnet's preprocessor does in training
    data = tmp_path / "data"
    _text(data / "wav.scp", [])
    shutil.copy(text, data / "text")
    write_shapes(data, tmp_path / "stats", None, tmp_path / "char" / "tokens.txt", "char", nlsyms)
    assert _lines(tmp_path / "stats" / "text_shape.char") == ["u1 10,10", "u2 6,10", "u3 2,10"]
    _text(data / "text", ["u1 paid 25", "u2 ab"])  # cleaned: PAID TWENTY FIVE
    write_shapes(data, tmp_path / "stats", None, tmp_path / "word" / "tokens.txt", "word", nlsyms, "tacotron")
    assert _lines(tmp_path / "stats" / "text_shape.word") == ["u1 3,8", "u2 1,8"]


def test_lm_text_shapes_count_char_and_word_tokens(tmp_path):
    """Stage 6 for char and word: the LM's shape files count the tokens its training will make."""
    text = _text(tmp_path / "text", ["u1 dr. who", "u2 ab"])
    tokens = _text(tmp_path / "tokens.txt", ["<blank>", "<unk>", "a", "<sos/eos>"])
    for token_type, cleaner, lengths in (("char", "none", ["7", "2"]), ("word", "tacotron", ["2", "1"])):
        assert lm_prepare_text.main(["--out_root", str(tmp_path / token_type), "--text", "train", str(text),
                                     "--token_type", token_type, "--bpemodel", "none", "--token_list", str(tokens),
                                     "--cleaner", cleaner]) == 0
        shapes = _lines(tmp_path / token_type / "train" / f"text_shape.{token_type}")
        assert shapes == [f"u1 {lengths[0]},4", f"u2 {lengths[1]},4"]
    with pytest.raises(SystemExit):  # bpe needs its model
        lm_prepare_text.main(["--out_root", str(tmp_path / "b"), "--text", "train", str(text),
                              "--token_list", str(tokens)])


def test_entry_point_takes_espnets_special_symbols_and_names_bad_input(tmp_path):
    text = _text(tmp_path / "text", ["u1 ab ba"])
    assert train_tokenizer.main(["--token_type", "char", "--text", str(text), "--out_dir", str(tmp_path / "c"),
                                 "--blank", "<b>", "--oov", "<oov>", "--sos_eos", "<eos>"]) == 0
    assert _lines(tmp_path / "c" / "tokens.txt") == ["<b>", "<oov>", "a", "b", "<space>", "<eos>"]
    missing = tmp_path / "none.txt"
    assert train_tokenizer.main(["--token_type", "word", "--text", str(text), "--out_dir", str(tmp_path / "w"),
                                 "--non_linguistic_symbols", str(missing)]) == 1
    assert not (tmp_path / "w" / "tokens.txt").exists()
    with pytest.raises(FileNotFoundError, match=f"{missing}: no such file"):
        write_token_list([missing], tmp_path / "w", "word")
    with pytest.raises(ValueError, match="cleaner 'tacotronn': Not supported"):
        write_token_list([text], tmp_path / "w", "word", cleaner="tacotronn")
    with pytest.raises(SystemExit):
        train_tokenizer.main(["--token_type", "phn", "--text", str(text), "--out_dir", str(tmp_path / "p")])
    with pytest.raises(SystemExit):  # bpe without --bpemodel
        make_shapes.main(["--token_list", "t", "--pair", str(tmp_path), str(tmp_path / "s")])
    data = _text(tmp_path / "data" / "wav.scp", []).parent
    assert make_shapes.main(["--token_type", "char", "--token_list", str(tmp_path / "c" / "tokens.txt"),
                             "--non_linguistic_symbols", str(missing), "--pair", str(data), str(tmp_path / "s")]) == 1
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("token_type, message", [
    ("phn", "--token_type phn: ESPnet's phoneme tokens need a g2p (its --g2p), which this recipe does not support"),
    ("foo", "--token_type foo: not supported; use bpe, char or word"),
])
def test_unknown_token_types_are_refused_at_startup(tmp_path, token_type, message):
    result = subprocess.run(
        ["./run.sh", "--stage", "99", "--token_type", token_type, "--expdir", str(tmp_path / "exp"),
         "--datadir", str(tmp_path / "data"), "--asr_config", "conf/demo/train_asr_lrsms_tiny.yaml"],
        cwd=LIBRI_RECIPE, env={**os.environ, "LIBRISPEECH": str(tmp_path)}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert not any(tmp_path.iterdir())
    result = subprocess.run(["./run.sh", "--stage", "99", "--token_type", "char"], cwd=AVSR_RECIPE,
                            env={**os.environ, "LRS3": str(tmp_path)}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "--token_type char: avsr.sh trains on SentencePiece pieces only" in result.stderr


@pytest.mark.end_to_end
def test_char_and_word_recipes_train_decode_and_score(tmp_path, tone_data):
    """Stages 3-5, 10-13 for char and for word on the tone data: the token list covers the training text
    (no <unk>), ESPnet's names (char/tokens.txt, asr_stats_raw_en_char, ..._raw_en_char tag), WER and CER
    scored (no TER: it is bpe's)."""
    from espnet2.text.build_tokenizer import build_tokenizer
    from espnet2.text.token_id_converter import TokenIDConverter

    data = tmp_path / "data"
    shutil.copytree(tone_data / "train", data / "tr")
    (data / "ts").mkdir()
    for name in ("wav.scp", "text"):  # a 2-utterance test set
        _text(data / "ts" / name, _lines(tone_data / "train" / name)[:2])
    sets = ["--train_set", "tr", "--valid_set", "tr", "--test_sets", "ts"]
    texts = [line.split(maxsplit=1)[1] for line in _lines(tone_data / "train" / "text")]
    for token_type, first in (("char", 3), ("word", 5)):  # stages 3-4 (the dump) once
        run_recipe(LIBRI_RECIPE, "LIBRISPEECH", tmp_path, tmp_path, *sets, "--token_type", token_type,
                   "--stage", str(first), "--stop_stage", "13", "--inference_nj", "1",
                   "--asr_args", "--max_epoch 1 --num_iters_per_epoch 2", "--inference_args", "--beam_size 1 --nbest 1")
        tokens = _lines(data / "en_token_list" / token_type / "tokens.txt")
        assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
        tokenizer, ids = build_tokenizer(token_type), TokenIDConverter(tokens, unk_symbol="<unk>")
        assert sorted(tokens[2:-1]) == sorted({t for text in texts for t in tokenizer.text2tokens(text)})
        unk = sum(i == 1 for text in texts for i in ids.tokens2ids(tokenizer.text2tokens(text)))
        assert unk == 0
        assert token_type == "word" or len(tokens) == 2 + 8 + 1 + 1  # char: a-h and <space>
        shapes = _lines(tmp_path / "exp" / f"asr_stats_raw_en_{token_type}" / "train" / f"text_shape.{token_type}")
        assert shapes[0] == f"utt000 {len(tokenizer.text2tokens(texts[0]))},{len(tokens)}"
        exp = tmp_path / "exp" / f"asr_train_asr_lrsms_tiny_raw_en_{token_type}_max_epoch1_num_iters_per_epoch2"
        config = (exp / "config.yaml").read_text()
        assert f"token_type: {token_type}\n" in config and "bpemodel: null\n" in config
        decode = exp / "decode_asr_tiny_beam_size1_nbest1_asr_model_valid.acc.best" / "ts"
        for metric in ("wer", "cer"):
            result = (decode / f"score_{metric}" / "result.txt").read_text()
            assert re.search(r"\|\s*Sum/Avg\s*\|\s*2\s+\d+\s*\|\s*[\d.]+\s+[\d.]+\s+[\d.]+", result), result
        assert not (decode / "score_ter").exists()
    assert not (data / "en_token_list" / "bpe_unigram30").exists()  # no SentencePiece model trained
