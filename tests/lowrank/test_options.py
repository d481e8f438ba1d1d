"""Declarative options: one reader checks every field's type and range and names key, value and range."""
from dataclasses import dataclass
from typing import Optional, Tuple

import pytest

from espnet_lrsms.lowrank.options import OptionError, check_field, describe, option, option_fields, read_options


@dataclass(frozen=True)
class Example:
    rank: int = option(help="the rank of every layer", low=1)
    dropout: float = option(0.0, help="dropout before the adapter", low=0, high=1, open_high=True)
    scale: float = option(16.0, help="the scaling", low=0, open_low=True)
    init: str = option("svd", help="how the factors start", choices=("svd", "kaiming"))
    fused: bool = option(False, help="fuse the projections")
    steps: Optional[int] = option(None, help="optimizer steps; null: all", low=1)
    names: Tuple[str, ...] = option(("q", "k"), help="the layers", noun="a module name")
    truncate: Optional[int] = option(None, help="the step of the truncation", low=1, required=True)


def read(conf):
    return read_options(Example, conf, "conf", context=" for this test")


def test_defaults_and_normalised_values():
    got = read({"rank": 8, "dropout": 0, "names": ["v"], "steps": None, "truncate": 5})
    assert got == Example(rank=8, dropout=0.0, names=("v",), truncate=5)
    assert isinstance(got.dropout, float) and isinstance(got.names, tuple)


@pytest.mark.parametrize(
    "conf, message",
    [
        ({"truncate": 5}, r"conf.rank: missing for this test; expected an integer >= 1 \(the rank of every layer\)"),
        ({"rank": 8}, r"conf.truncate: missing for this test; expected an integer >= 1 \(the step of the truncation\)"),
        ({"rank": 8, "truncate": None}, r"conf.truncate: missing for this test"),
        ({"rank": 0, "truncate": 5}, r"conf.rank: expected an integer >= 1, got 0"),
        ({"rank": 2.0, "truncate": 5}, r"conf.rank: expected an integer >= 1, got 2.0"),
        ({"rank": True, "truncate": 5}, r"conf.rank: expected an integer >= 1, got True"),
        ({"rank": 8, "truncate": 5, "dropout": 1}, r"conf.dropout: expected a number in \[0, 1\), got 1"),
        ({"rank": 8, "truncate": 5, "scale": 0}, r"conf.scale: expected a number > 0, got 0"),
        ({"rank": 8, "truncate": 5, "scale": float("inf")}, r"conf.scale: expected a number > 0, got inf"),
        ({"rank": 8, "truncate": 5, "scale": "16"}, r"conf.scale: expected a number > 0, got '16'"),
        ({"rank": 8, "truncate": 5, "init": "xavier"}, r"conf.init: expected one of \['svd', 'kaiming'\], got 'xavier'"),
        ({"rank": 8, "truncate": 5, "init": ["svd"]}, r"conf.init: expected one of \['svd', 'kaiming'\], got \['svd'\]"),
        ({"rank": 8, "truncate": 5, "fused": "yes"}, r"conf.fused: expected true/false, got 'yes'"),
        ({"rank": 8, "truncate": 5, "steps": 0}, r"conf.steps: expected an integer >= 1 or null, got 0"),
        ({"rank": 8, "truncate": 5, "names": []}, r"conf.names: expected a non-empty list, each a module name, got \[\]"),
        ({"rank": 8, "truncate": 5, "names": ["q", 3]}, r"conf.names\[1\]: expected a module name, got 3"),
        ({"rank": 8, "truncate": 5, "rnak": 8}, r"conf: unknown key\(s\) \['rnak'\] for this test; known keys are \['rank', "),
        ([8], r"conf: expected a mapping with keys \['rank', 'dropout', "),
    ],
)
def test_errors_name_key_value_and_range(conf, message):
    with pytest.raises(OptionError, match=message):
        read(conf)


def test_keys_limit_what_a_mapping_may_give_and_errors_take_the_caller_s_class():
    class ConfError(ValueError):
        pass

    with pytest.raises(ConfError, match=r"conf: unknown key\(s\) \['dropout'\]; known keys are \['rank', 'truncate'\]"):
        read_options(Example, {"rank": 8, "truncate": 5, "dropout": 0.1}, "conf", ConfError, keys=("rank", "truncate"))
    assert check_field(Example, "dropout", 0.5, "conf.dropout") == 0.5
    assert describe(Example.__annotations__["steps"], option_fields(Example)["steps"].metadata) == "an integer >= 1 or null"
    assert option_fields(Example)["rank"].metadata["help"] == "the rank of every layer"
