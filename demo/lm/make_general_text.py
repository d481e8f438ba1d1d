"""Write demo/lm/text: a small "general-domain" LM text for the demo (Kaldi text, ids
``general-<n>``), another domain than the demo's transcripts (connected digit strings).

Sentences of plain English from a small grammar in which the digit words stand in other roles
(SIX FISH, HE WON, FOR HER, TOO LATE): the base LM of the demo is trained on this text (recipe
``--lm_train_text``) and adapted to the digit strings (``--lora_train_text``, default the training
transcripts), as the paper adapts a general LM to a target domain. Deterministic:

    python demo/lm/make_general_text.py            # writes demo/lm/text (2000 sentences)
"""
import argparse
import random
from pathlib import Path

SUBJECTS = ["HE", "SHE", "THE MAN", "THE WOMAN", "OUR FRIEND", "THE TEACHER", "MY SISTER", "HIS BROTHER", "THEY", "WE", "I"]
VERBS = ["SAW", "FOUND", "GOT", "TOOK", "BOUGHT", "SOLD", "GAVE", "WON", "ATE", "SHOWED", "WANTED", "NEEDED"]
NUMBERS = ["ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "TEN"]
NOUNS = ["FISH", "TREES", "HORSES", "STONES", "BOOKS", "SHIRTS", "RINGS", "NUTS", "ROSES", "GIFTS", "BOATS", "SHEEP"]
PLACES = ["IN THE HOUSE", "BY THE RIVER", "AT THE SHOP", "ON THE HILL", "IN THE FOREST", "AT SCHOOL", "IN TOWN"]
TIMES = ["AT SEVEN", "AT NINE", "BEFORE NOON", "AT NIGHT", "ON SUNDAY", "AFTER SCHOOL", "IN THE MORNING"]
PEOPLE = ["HER", "HIM", "THEM", "US", "THE CHILDREN", "HIS MOTHER", "THE NEIGHBOURS"]
TEMPLATES = [
    "{s} {v} {n} {o}",
    "{s} {v} {n} {o} {p}",
    "{s} {v} {n} {o} FOR {q}",
    "{s} {v} THE {o} {t}",
    "{s} WENT TO THE SHOP {t} TO BUY {n} {o}",
    "{s} WON {n} GAMES {t}",
    "IT WAS TOO LATE FOR {q} TO SEE THE {o}",
    "{s} HAD ONE {o} AND {q} HAD {n}",
    "{s} ATE {t} WITH {q}",
    "THERE WERE {n} {o} {p}",
    "{s} CAME HOME {t} TOO",
    "{s} SAID THAT {n} {o} WERE ENOUGH FOR {q}",
]


def sentence(rng: random.Random) -> str:
    return rng.choice(TEMPLATES).format(
        s=rng.choice(SUBJECTS), v=rng.choice(VERBS), n=rng.choice(NUMBERS), o=rng.choice(NOUNS),
        p=rng.choice(PLACES), t=rng.choice(TIMES), q=rng.choice(PEOPLE),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "text")
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    args.out.write_text("".join(f"general-{i:05d} {sentence(rng)}\n" for i in range(args.sentences)))


if __name__ == "__main__":
    main()
