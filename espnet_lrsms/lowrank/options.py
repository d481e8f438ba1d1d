"""Declarative options: each dataclass field says its type, range and help; one reader checks a YAML mapping.

    @dataclass(frozen=True)
    class Example:
        rank: int = option(help="the rank of every layer", low=1)
        dropout: float = option(0.0, help="dropout before the adapter", low=0, high=1, open_high=True)

    read_options(Example, {"rank": 8}, "lora_conf", ValueError)  # Example(rank=8, dropout=0.0)

Types understood: ``bool``, ``int``, ``float`` (finite), ``str`` (non-empty), ``Optional[...]`` (null allowed)
and ``Tuple[X, ...]`` (a non-empty YAML list, each entry checked as ``X``). ``choices`` limits a value to a
set; ``parse(value, where)`` takes over for a nested value (a rank schedule). A field without a default
must be given; ``required=True``: given and not null. Every error is one line naming key, value and what is
allowed: ``<where>.<key>: expected <what>, got <value>``.

Pure Python: nothing here imports ESPnet.
"""
import math
from dataclasses import MISSING, Field, field, fields
from numbers import Real
from typing import (
    Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Type, Union, get_args, get_origin, get_type_hints,
)


class OptionError(ValueError):
    """A config value its field does not allow; the message names key, value and what is allowed."""


def option(
    default: Any = MISSING,
    *,
    help: str,
    low: Optional[float] = None,
    high: Optional[float] = None,
    open_low: bool = False,
    open_high: bool = False,
    choices: Optional[Sequence[Any]] = None,
    noun: Optional[str] = None,
    parse: Optional[Callable[[Any, str], Any]] = None,
    required: bool = False,
    default_factory: Any = MISSING,
    **extra: Any,
) -> Any:
    """A dataclass field with its help, range (``low``/``high``, closed unless ``open_*``), ``choices``, a
    ``noun`` for messages (default from the type: "a number", "an integer") and an own ``parse``."""
    metadata = dict(help=help, low=low, high=high, open_low=open_low, open_high=open_high, choices=choices,
                    noun=noun, parse=parse, required=required, **extra)
    return field(default=default, default_factory=default_factory, metadata=metadata)


def _unwrap_optional(hint: Any) -> Tuple[bool, Any]:
    args = get_args(hint)
    if get_origin(hint) is Union and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return True, rest[0] if len(rest) == 1 else Union[tuple(rest)]
    return False, hint


def _range_text(meta: Mapping) -> str:
    low, high = meta.get("low"), meta.get("high")
    if low is not None and high is not None:
        return f" in {'(' if meta['open_low'] else '['}{low}, {high}{')' if meta['open_high'] else ']'}"
    if low is not None:
        return f" {'>' if meta['open_low'] else '>='} {low}"
    if high is not None:
        return f" {'<' if meta['open_high'] else '<='} {high}"
    return ""


def describe(hint: Any, meta: Mapping) -> str:
    """What a field accepts, in words: "an integer >= 1", "a number in [0, 1)", "one of ['svd', ...]"."""
    optional, base = _unwrap_optional(hint)
    if meta.get("choices") is not None:
        what = f"one of {list(meta['choices'])}"
    elif get_origin(base) is tuple:
        what = f"a non-empty list, each {describe(get_args(base)[0], meta)}"
    else:
        nouns = {bool: "true/false", int: "an integer", float: "a number", str: "a non-empty string"}
        what = (meta.get("noun") or nouns.get(base) or meta.get("help", "a value")) + _range_text(meta)
    return what + (" or null" if optional and get_origin(base) is not tuple else "")


def _in_range(value: Real, meta: Mapping) -> bool:
    low, high = meta.get("low"), meta.get("high")
    if low is not None and not (low < value if meta["open_low"] else low <= value):
        return False
    return high is None or (value < high if meta["open_high"] else value <= high)


def check_value(value: Any, hint: Any, meta: Mapping, where: str, error: Type[Exception] = OptionError) -> Any:
    """``value`` checked (and normalised: floats to float, lists to tuples) against a field's type and range."""
    if meta.get("parse") is not None:
        try:
            return meta["parse"](value, where)
        except ValueError as e:
            raise e if isinstance(e, error) else error(str(e)) from None
    optional, base = _unwrap_optional(hint)
    bad = error(f"{where}: expected {describe(hint, meta)}, got {value!r}")
    if value is None:
        if optional:
            return None
        raise bad
    if meta.get("choices") is not None:
        try:
            known = value in meta["choices"]
        except TypeError:  # unhashable: a list or mapping
            known = False
        if not known:
            raise bad
        return value
    if get_origin(base) is tuple:
        if not isinstance(value, (list, tuple)) or not value:
            raise bad
        return tuple(check_value(v, get_args(base)[0], meta, f"{where}[{i}]", error) for i, v in enumerate(value))
    if base is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if base is str:
        if not isinstance(value, str) or not value:
            raise bad
        return value
    if base in (int, float):
        if isinstance(value, bool) or not isinstance(value, int if base is int else Real):
            raise bad
        if not math.isfinite(value) or not _in_range(value, meta):
            raise bad
        return base(value)
    if not isinstance(value, base):
        raise bad
    return value


def option_fields(cls: type) -> Dict[str, Field]:
    """The fields of a dataclass, by key, in order."""
    return {f.name: f for f in fields(cls)}


def check_field(cls: type, key: str, value: Any, where: str, error: Type[Exception] = OptionError) -> Any:
    """One field of ``cls`` checked, reported at ``where`` (e.g. ``lowrank.mhsa[1] (α_f)``)."""
    return check_value(value, get_type_hints(cls)[key], option_fields(cls)[key].metadata, where, error)


def read_options(
    cls: type,
    conf: Any,
    where: str,
    error: Type[Exception] = OptionError,
    keys: Optional[Sequence[str]] = None,
    context: str = "",
) -> Any:
    """``cls(**conf)`` once every key is known (one of ``keys``, default: every field), every required key is
    given and every value fits its field; ``context`` (" for strategy 'warmup'") follows the key in errors."""
    known = list(option_fields(cls) if keys is None else keys)
    if not isinstance(conf, Mapping):
        raise error(f"{where}: expected a mapping with keys {known}, got {conf!r}")
    unknown = sorted(set(conf) - set(known), key=str)
    if unknown:
        raise error(f"{where}: unknown key(s) {unknown}{context}; known keys are {known}")
    hints, by_key, values = get_type_hints(cls), option_fields(cls), {}
    for key in known:
        meta = by_key[key].metadata
        no_default = by_key[key].default is MISSING and by_key[key].default_factory is MISSING
        if (key not in conf and no_default) or (conf.get(key) is None and meta.get("required")):
            wanted = describe(_unwrap_optional(hints[key])[1], meta)
            raise error(f"{where}.{key}: missing{context}; expected {wanted} ({meta['help']})")
        if key in conf:
            values[key] = check_value(conf[key], hints[key], meta, f"{where}.{key}", error)
    return cls(**values)
