"""Stage 5, bpe: ESPnet's token list — <blank>, <unk>, every piece of bpe.vocab after its first three lines in
order, <sos/eos> — whether or not the training text uses each piece."""
import random

import sentencepiece

from espnet_lrsms.bin import train_tokenizer as train_tokenizer_bin
from espnet_lrsms.recipe.tokenizer import train_tokenizer


def _text(path, count=40, seed=0):
    rng = random.Random(seed)
    words = ["zebra", "quartz", "jukebox", "zebras", "quartzite", "box", "jumbo", "bra"]
    path.write_text("".join(f"u{i:03d} {' '.join(rng.choice(words) for _ in range(4)).upper()}\n" for i in range(count)))
    return path


def test_the_bpe_token_list_is_espnets_every_piece_of_bpe_vocab(tmp_path):
    text = _text(tmp_path / "text")
    tokens_txt = train_tokenizer(text, tmp_path / "bpe_unigram40", 40)
    tokens = tokens_txt.read_text().splitlines()
    vocab = (tmp_path / "bpe_unigram40" / "bpe.vocab").read_text().splitlines()
    assert [line.split("\t")[0] for line in vocab[:3]] == ["<unk>", "<s>", "</s>"]
    assert tokens == ["<blank>", "<unk>", *(line.split("\t")[0] for line in vocab[3:]), "<sos/eos>"]
    assert len(tokens) == len(vocab) == 27  # as many as bpe.vocab has lines (this text gives 27 of the 40 asked)
    # the list holds pieces the text never encodes to (the old list left them out)
    model = sentencepiece.SentencePieceProcessor(model_file=str(tmp_path / "bpe_unigram40" / "bpe.model"))
    used = {p for line in text.read_text().splitlines() for p in model.encode(line.split(maxsplit=1)[1], out_type=str)}
    unused = [t for t in tokens[2:-1] if t not in used]
    assert len(used) == 8 and len(unused) == 16  # the 8 words whole; their letters unused
    # the model's ids and the list agree as ESPnet's do: piece id k is token k - 1 (<unk> is 1 in both)
    assert all(tokens[model.piece_to_id(t) - 1] == t for t in tokens[2:-1])


def test_the_bin_names_its_specials(tmp_path):
    text = _text(tmp_path / "text", count=10)
    assert train_tokenizer_bin.main(["--token_type", "bpe", "--text", str(text), "--out_dir", str(tmp_path / "b"),
                                     "--nbpe", "20", "--blank", "<b>", "--oov", "<oov>", "--sos_eos", "<eos>"]) == 0
    tokens = (tmp_path / "b" / "tokens.txt").read_text().splitlines()
    vocab = (tmp_path / "b" / "bpe.vocab").read_text().splitlines()
    assert tokens == ["<b>", "<oov>", *(line.split("\t")[0] for line in vocab[3:]), "<eos>"]
