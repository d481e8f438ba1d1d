"""Recipe stage 6: LM texts in ESPnet's layout plus their shape files (espnet_lrsms.lm.text, espnet_lrsms.text.tokens).

    python -m espnet_lrsms.bin.lm_prepare_text --out_root exp/lm_stats_en_bpe5000 \
        --bpemodel data/en_token_list/bpe_unigram5000/bpe.model --token_list data/en_token_list/bpe_unigram5000/tokens.txt \
        --text train data/train_960/text --plain_text train librispeech-lm-norm.txt.gz \
        --text valid data/dev/text --text lora_train data/train_960/text

Each set named by ``--text SET FILE`` (Kaldi text: ``<id> <words>``) or ``--plain_text SET FILE`` (a
sentence a line, .gz ok) gets ``<out_root>/<SET>/{text,text_shape.<token_type>}``: the tokens of
``--token_type`` bpe (``--bpemodel``'s pieces), char or word, after ``--cleaner``, ``--non_linguistic_symbols``
whole, as ESPnet's LM preprocessor makes them.
"""
import argparse
import logging
import sys
from pathlib import Path

from espnet2.utils.types import str_or_none

from espnet_lrsms.lm.text import write_lm_text
from espnet_lrsms.text.tokens import TOKEN_TYPES, write_text_shapes


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_root", type=Path, required=True)
    parser.add_argument("--text", nargs=2, action="append", default=[], metavar=("SET", "FILE"), help="Kaldi text")
    parser.add_argument("--plain_text", nargs=2, action="append", default=[], metavar=("SET", "FILE"), help="plain text")
    parser.add_argument("--token_type", choices=TOKEN_TYPES, default="bpe")
    parser.add_argument("--bpemodel", type=str_or_none, help="SentencePiece model: needed for --token_type bpe")
    parser.add_argument("--token_list", type=Path, required=True)
    parser.add_argument("--non_linguistic_symbols", type=str_or_none, help="ESPnet's: a file, one symbol a line")
    parser.add_argument("--cleaner", type=str_or_none, help="ESPnet's text cleaner, e.g. tacotron")
    args = parser.parse_args(cmd)
    if args.token_type == "bpe" and args.bpemodel is None:
        parser.error("--token_type bpe needs --bpemodel")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    sets = {}
    for kind, pairs in (("kaldi", args.text), ("plain", args.plain_text)):
        for name, path in pairs:
            sets.setdefault(name, {"kaldi": [], "plain": []})[kind].append(Path(path))
    if not sets:
        parser.error("name at least one set with --text SET FILE or --plain_text SET FILE")
    for name, files in sets.items():
        text = write_lm_text(args.out_root / name, files["kaldi"], files["plain"])
        write_text_shapes(text, args.out_root / name, args.bpemodel, args.token_list, args.token_type,
                          args.non_linguistic_symbols, args.cleaner)
    return 0


if __name__ == "__main__":
    sys.exit(main())
