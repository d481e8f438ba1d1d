"""Stage 5: ESPnet's token list from Kaldi-style text, for --token_type bpe, char or word.

    python -m espnet_lrsms.bin.train_tokenizer --token_type bpe --text data/train_960/text \\
        --out_dir data/en_token_list/bpe_unigram5000 --nbpe 5000 --mode unigram
    python -m espnet_lrsms.bin.train_tokenizer --token_type char --text data/train_960/text \\
        --out_dir data/en_token_list/char --cleaner tacotron --non_linguistic_symbols data/nlsyms.txt

bpe: <out_dir>/bpe.model and <out_dir>/tokens.txt (SentencePiece on the first --text, --bpe_nlsyms as
user-defined symbols); char and word: <out_dir>/tokens.txt from every --text, cleaned with --cleaner,
--non_linguistic_symbols kept whole. --blank first, --oov second, --sos_eos last (ESPnet's asr.sh).
"""
import argparse
import logging
import sys
from pathlib import Path

from espnet2.utils.types import str_or_none

from espnet_lrsms.text.tokens import TOKEN_TYPES
from espnet_lrsms.recipe.tokenizer import BLANK, OOV, SOS_EOS, train_tokenizer, write_token_list


def main(cmd=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", type=Path, action="append", required=True, help="Kaldi text (char, word: repeatable)")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--token_type", choices=TOKEN_TYPES, default="bpe")
    parser.add_argument("--nbpe", type=int, default=5000)
    parser.add_argument("--mode", choices=["unigram", "bpe", "char", "word"], default="unigram",
                        help="SentencePiece model type (ESPnet's --bpemode)")
    parser.add_argument("--bpe_nlsyms", type=str_or_none, help="bpe: user-defined symbols, a file or a comma list")
    parser.add_argument("--non_linguistic_symbols", type=str_or_none, help="char, word: a file, one symbol a line")
    parser.add_argument("--cleaner", type=str_or_none, help="char, word: ESPnet's text cleaner, e.g. tacotron")
    parser.add_argument("--blank", default=BLANK)
    parser.add_argument("--oov", default=OOV)
    parser.add_argument("--sos_eos", default=SOS_EOS)
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    specials = {"blank": args.blank, "oov": args.oov, "sos_eos": args.sos_eos}
    try:
        if args.token_type == "bpe":
            if len(args.text) > 1:
                parser.error("--token_type bpe trains on one --text")
            train_tokenizer(args.text[0], args.out_dir, args.nbpe, args.mode, bpe_nlsyms=args.bpe_nlsyms, **specials)
        else:
            write_token_list(args.text, args.out_dir, args.token_type,
                             non_linguistic_symbols=args.non_linguistic_symbols, cleaner=args.cleaner, **specials)
    except (FileNotFoundError, ValueError) as e:
        logging.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
