"""LM training text in ESPnet's layout (``<id> <words>`` per line) and the vocabulary of a trained LM.

Two kinds of input: Kaldi ``text`` files (transcripts, ids kept) and plain text, one sentence a line,
optionally gzipped (the LibriSpeech LM corpus, ``librispeech-lm-norm.txt.gz``), whose lines get ids
``<file stem>-<line number>``. Its shape file ``text_shape.<token_type>`` is written as for the ASR text
(:func:`espnet_lrsms.text.tokens.write_text_shapes`). Next to ``text``, ``words.txt`` lists its distinct words:
an LM's vocabulary (:func:`lm_vocabulary`) without reading its whole training text again.
"""
import logging
import os
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import yaml

from espnet_lrsms.fileio import replaced_on_success
from espnet_lrsms.text.kaldi_text import open_text, read_kaldi_text

logger = logging.getLogger(__name__)


def read_plain_text(path: Path) -> Iterator[Tuple[str, str]]:
    stem = path.name.split(".")[0]
    with open_text(path) as f:
        for number, line in enumerate(f, 1):
            words = " ".join(line.split())
            if words:
                yield f"{stem}-{number:09d}", words


def write_lm_text(out_dir: Path, kaldi_texts: Sequence[Path] = (), plain_texts: Sequence[Path] = ()) -> Path:
    """Concatenate the inputs into ``out_dir/text``; ids must be unique across them. Returns the path."""
    if not kaldi_texts and not plain_texts:
        raise ValueError("no LM text given: pass at least one Kaldi text or plain text file")
    for path in list(kaldi_texts) + list(plain_texts):
        if not Path(path).is_file():
            raise FileNotFoundError(f"LM text {path}: no such file")
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "text"
    seen = set()
    words_seen = set()
    count = 0
    with replaced_on_success(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
        sources = [(Path(p), read_kaldi_text) for p in kaldi_texts] + [(Path(p), read_plain_text) for p in plain_texts]
        for path, reader in sources:
            for key, words in reader(path):
                if key in seen:
                    raise ValueError(f"{path}: utterance id {key} appears twice in the LM text")
                seen.add(key)
                f.write(f"{key} {words}\n")
                words_seen.update(words.split())
                count += 1
        if count == 0:
            raise ValueError(f"LM text from {[str(p) for p in list(kaldi_texts) + list(plain_texts)]} is empty")
    with replaced_on_success(out_dir / WORDS_FILE) as tmp:
        Path(tmp).write_text("".join(f"{w}\n" for w in sorted(words_seen)), encoding="utf-8")
    logger.info("%d sentences, %d distinct words -> %s", count, len(words_seen), out)
    return out


WORDS_FILE = "words.txt"
SPECIAL_TOKENS = ("<blank>", "<unk>", "<sos/eos>")


def text_words(path: Union[str, Path]) -> List[str]:
    """The distinct words of a Kaldi ``text`` (ids left out), sorted; a ``words.txt`` next to it is read instead."""
    path = Path(path)
    if (path.parent / WORDS_FILE).is_file() and path.name == "text":
        return (path.parent / WORDS_FILE).read_text(encoding="utf-8").split()
    return sorted({w for _, words in read_kaldi_text(path) for w in words.split()})


def training_dir(config_file: Path, conf: dict) -> Optional[Path]:
    """The directory an ESPnet training ran in, told by its ``config.yaml``: the config's folder less the
    components of the relative ``output_dir`` recorded in it (exp/lm_x/config.yaml with ``output_dir:
    exp/lm_x`` ran in the folder holding exp/). None if ``output_dir`` is absolute or does not match."""
    output_dir = conf.get("output_dir")
    if not isinstance(output_dir, str) or not output_dir or os.path.isabs(output_dir):
        return None
    parts = Path(os.path.normpath(output_dir)).parts
    exp_parts = Path(os.path.abspath(config_file)).parent.parts
    if ".." in parts or len(parts) >= len(exp_parts) or exp_parts[len(exp_parts) - len(parts):] != parts:
        return None
    return Path(*exp_parts[: len(exp_parts) - len(parts)])


def config_file_path(config_file: Union[str, Path], conf: dict, key: str, value: str) -> Path:
    """The file that ``value``, a path under ``key`` of the ESPnet config ``config_file``, names.

    ESPnet records paths as it was given them, relative to the directory training ran in; a relative
    ``value`` is looked for next to the config (relative to the experiment dir) and relative to that
    training dir (:func:`training_dir`), whatever the current directory is. It must be found under
    exactly one of them; an absolute ``value`` must exist.
    """
    config_file = Path(os.path.abspath(config_file))
    if os.path.isabs(value):
        if not os.path.isfile(value):
            raise FileNotFoundError(f"{config_file}: {key} {value!r} is not a file")
        return Path(value)
    bases = [config_file.parent] + [d for d in [training_dir(config_file, conf)] if d is not None]
    candidates = [Path(os.path.normpath(base / value)) for base in bases]
    found = {os.path.realpath(c): c for c in candidates if c.is_file()}
    if not found:
        raise FileNotFoundError(f"{config_file}: {key} {value!r} is not a file (tried {', '.join(map(str, candidates))})")
    if len(found) > 1:
        raise ValueError(
            f"{config_file}: {key} {value!r} is ambiguous: both {' and '.join(map(str, found.values()))} exist "
            "(relative to the experiment dir and to the dir training ran in); write it as an absolute path"
        )
    return next(iter(found.values()))


def lm_vocabulary(lm_train_config: Union[str, Path]) -> Tuple[List[str], str]:
    """The words an ESPnet LM knows, and where they came from.

    An adapted LM (``lora_conf`` with ``base_lm_config``) answers for its base LM, so a base LM and its
    adaptations share one vocabulary. A word-level LM: its token list (special tokens left out);
    otherwise the words of its training text(s) (``train_data_path_and_name_and_type``, type ``text``).
    Relative paths are found from any current directory (:func:`config_file_path`).
    """
    with open(lm_train_config, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    if conf.get("lora_conf") and conf.get("base_lm_config"):
        return lm_vocabulary(config_file_path(lm_train_config, conf, "base_lm_config", conf["base_lm_config"]))
    if conf.get("token_type") == "word":
        tokens = conf["token_list"]
        if isinstance(tokens, str):
            tokens = config_file_path(lm_train_config, conf, "token_list", tokens).read_text(encoding="utf-8").split()
        return [t for t in tokens if t not in SPECIAL_TOKENS], f"the token list of {lm_train_config}"
    texts = [
        config_file_path(lm_train_config, conf, "train_data_path_and_name_and_type", entry[0])
        for entry in conf.get("train_data_path_and_name_and_type", [])
        if entry[2] == "text"
    ]
    if not texts:
        raise ValueError(f"{lm_train_config}: no word token list and no training text to take a vocabulary from")
    return sorted({w for t in texts for w in text_words(t)}), f"the training text of {lm_train_config}"


