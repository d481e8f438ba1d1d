"""Writing results so that an interrupted or failed run never leaves a finished-looking file behind.

Every file or directory this package produces is written under a temporary sibling name and renamed
over its final name only when complete; every YAML config it writes has one layout
(:func:`config_yaml`). Pure Python: no ESPnet, no torch.
"""
import os
import shutil
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Dict, Iterator, Mapping, Sequence, Tuple, Union

import yaml

PathLike = Union[str, os.PathLike]


def temporary_sibling(path: PathLike) -> Path:
    """``<stem>.tmp<suffix>`` beside ``path`` (the suffix kept: matplotlib and soundfile read it)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.tmp{path.suffix}" if path.suffix else f"{path.name}.tmp")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def replaced_on_success(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to (a file, or a directory the block
    creates); when the block succeeds, it replaces ``path`` (an existing directory is removed first).
    A leftover from an earlier failed run is removed before, and the temporary path after a failure.
    """
    path = Path(path)
    tmp = temporary_sibling(path)
    _remove(tmp)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if tmp.is_dir() and path.exists():
        _remove(path)
    os.replace(tmp, path)


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file; returns ``path``."""
    with replaced_on_success(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


class ConfigDumper(yaml.SafeDumper):
    """PyYAML's safe dumper without anchors and aliases (ESPnet's parser reads each value in place)."""

    def ignore_aliases(self, data) -> bool:
        return True


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    numbers = bool(data) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=numbers)


ConfigDumper.add_representer(list, _represent_list)


def yaml_body(data: Mapping) -> str:
    """``data`` as YAML in the layout of ESPnet's ``config.yaml`` (keys in their order, indent 4, Unicode
    kept, no aliases, no line folding), except that a list of plain numbers stands on one line, as in the
    hand-written configs: ``betas: [0.9, 0.98]``, ``mhsa: [0.1, 0.2]``, ``blocks: [3, 4]``."""
    return yaml.dump(
        dict(data), Dumper=ConfigDumper, indent=4, sort_keys=False, allow_unicode=True,
        default_flow_style=False, width=1 << 20,
    )


def config_yaml(body: Union[Mapping, str], header: Sequence[str] = ()) -> str:
    """The text of a YAML config: each ``header`` line as a ``# `` comment, a blank line, then ``body``,
    either a mapping (through :func:`yaml_body`) or YAML text already laid out (kept as it is, comments
    and all). Every config this package writes goes through here."""
    text = body if isinstance(body, str) else yaml_body(body)
    if not header:
        return text
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header)
    return f"{comments}\n{text}"


def write_config_yaml(path: PathLike, body: Union[Mapping, str], header: Sequence[str] = ()) -> Path:
    """Write :func:`config_yaml`'s text to ``path`` through a temporary file; returns ``path``."""
    return write_text_atomic(path, config_yaml(body, header))


def archive_member_path(archive: PathLike, name: str, what: str = "member") -> PurePosixPath:
    """``name``, a member of the zip or tar ``archive`` (or a path its ``meta.yaml`` names, ``what`` saying
    which), as a relative path that stays inside the folder it is extracted to. An absolute name or one
    with ``..`` would write (or point) outside it: a ``ValueError`` naming ``archive`` and the name."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{archive}: {what} {name!r} points outside the archive; refusing to extract it")
    return path


def load_weights_only(path: PathLike, map_location="cpu"):
    """``torch.load`` that unpickles tensors and plain containers only, never code.

    A file that needs more (a crafted ``.pth``, or ESPnet's ``checkpoint.pth`` with its pickled
    reporter) is refused with a ``ValueError`` naming it.
    """
    import pickle

    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path}: refused to load: it holds more than tensors and plain containers, and loading it "
            f"could run code ({str(error).splitlines()[-1][:200]}). Pass a state dict such as <N>epoch.pth "
            "or valid.acc.best.pth"
        ) from None
    except OSError:
        raise
    except Exception as error:  # a text file or a truncated download: torch says KeyError: 101 and the like
        raise ValueError(f"{path}: not a PyTorch checkpoint that torch.save wrote "
                         f"({type(error).__name__}: {str(error)[:200]})") from None


def split_kaldi_line(line: str) -> Tuple[str, str]:
    """``(key, value)`` of one line of a Kaldi/ESPnet table (``text``, ``wav.scp``, ``utt2spk``, ...):
    the key ends at the first run of spaces or tabs, as Kaldi's and ESPnet's readers take it; the
    value keeps its inner whitespace, not the surrounding one. An empty line gives ``("", "")``."""
    parts = line.strip().split(maxsplit=1)
    if not parts:
        return "", ""
    return parts[0], parts[1].strip() if len(parts) > 1 else ""


def iter_kaldi_table(path: PathLike) -> Iterator[Tuple[int, str, str]]:
    """``(line number, key, value)`` of every non-empty line of the table at ``path``; a line that is
    not UTF-8 raises ``ValueError`` naming file and line."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"{path}:{number}: not UTF-8 text ({error.reason} at byte {error.start})") from None
            key, value = split_kaldi_line(line)
            if key:
                yield number, key, value


def read_kaldi_table(path: PathLike) -> Dict[str, str]:
    """``{key: value}`` of the table at ``path``; a key on two lines is a ``ValueError`` naming both."""
    table: Dict[str, str] = {}
    first_line: Dict[str, int] = {}
    for number, key, value in iter_kaldi_table(path):
        if key in table:
            raise ValueError(f"{path}:{number}: {key} appears again (first on line {first_line[key]})")
        table[key] = value
        first_line[key] = number
    return table


def save_figure(fig, path: PathLike, **savefig_kwargs) -> Path:
    """``fig.savefig`` through a temporary file that keeps the format's suffix; returns ``path``."""
    with replaced_on_success(path) as tmp:
        fig.savefig(tmp, **savefig_kwargs)
    return Path(path)
