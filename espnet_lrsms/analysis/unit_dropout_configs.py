"""The training configs of the paper's federated-dropout comparison: ambient, critical and flat.

From a base YAML (``encoder: lowrank_conformer``): ``<name>_ambient_dropout.yaml`` and
``<name>_critical_dropout.yaml`` drop ``rate`` of the units of the given ambient / critical blocks
(``encoder_conf.unit_dropout``), ``<name>_flat_dropout.yaml`` drops from every block at the rate that
drops as many parameters per step as the ambient setting. All three set ``conv_norm`` (group norm by
default: batch norm suppresses ambient layers, Zhou, Guliani et al. 2022).
"""
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import yaml

from espnet_lrsms.analysis.layer_reset import MODES, ambient_blocks, critical_blocks
from espnet_lrsms.fileio import write_config_yaml

KINDS = ("ambient", "critical", "flat")


def blocks_from_csv(path: Path, count: int) -> Tuple[List[int], List[int], str]:
    """The ``count`` most ambient and the ``count`` most critical blocks of a ``layer_reset.csv``, under
    its first reset mode (and that mode)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    modes = [m for m in MODES if any(r.get("mode") == m and r.get("module") == "(all)" for r in rows)]
    if not modes:
        raise ValueError(f"{path}: no whole-block rows (run layer_reset with --granularity block)")
    ambient, critical = ambient_blocks(rows, modes[0]), critical_blocks(rows, modes[0])
    for kind, found in (("ambient", ambient), ("critical", critical)):
        if len(found) < count:
            raise ValueError(f"{path}: {len(found)} {kind} blocks under {modes[0]} ({found}), --num_blocks asks for {count}")
    return ambient[:count], critical[:count], modes[0]


@dataclass(frozen=True)
class Written:
    kind: str
    path: Path
    option: dict
    plan: object  # espnet_lrsms.asr.unit_dropout.UnitDropoutPlan


def write_unit_dropout_configs(
    base: Path, ambient: Sequence[int], critical: Sequence[int], rate: float, modules: Sequence[str],
    conv_norm: str, out_dir: Path, name: str, source: str, command: str,
) -> List[Written]:
    """Write the three configs (the header says what each drops, where the blocks came from and
    ``command``); returns what each one drops."""
    from espnet_lrsms.asr.unit_dropout import flat_rate_matching
    from espnet_lrsms.asr.build import build_asr_model

    config = yaml.safe_load(Path(base).read_text())
    if config.get("encoder") != "lowrank_conformer":
        raise ValueError(f"{base}: encoder must be lowrank_conformer, got {config.get('encoder')!r}")
    if set(ambient) & set(critical):
        raise ValueError(f"blocks {sorted(set(ambient) & set(critical))} are both ambient and critical")
    encoder_conf = dict(config.get("encoder_conf") or {}, conv_norm=conv_norm)
    encoder_conf.pop("ffn_unit_dropout", None)
    probe = build_asr_model(base, device="meta", overrides={"encoder_conf": encoder_conf})
    stack = probe.encoder.encoders
    for blocks in (ambient, critical):
        bad = [b for b in blocks if not 0 <= b < len(stack)]
        if bad:
            raise ValueError(f"blocks {bad}: the encoder of {base} has blocks 0 … {len(stack) - 1}")
    modules = list(modules)
    options: Dict[str, dict] = {
        "ambient": {"blocks": sorted(ambient), "rate": rate, "modules": modules},
        "critical": {"blocks": sorted(critical), "rate": rate, "modules": modules},
        "flat": {"blocks": "all", "rate": flat_rate_matching(stack, ambient, rate, modules), "modules": modules},
    }
    why = {"ambient": f"the ambient blocks {source}", "critical": f"the critical blocks {source}",
           "flat": "all blocks, at the rate that drops as many parameters per step as the ambient setting"}
    written = []
    for kind in KINDS:
        option = options[kind]
        conf = dict(encoder_conf, unit_dropout=option)
        plan = build_asr_model(base, device="meta", overrides={"encoder_conf": conf}).encoder.unit_dropout_plan
        path = Path(out_dir) / f"{name}_{kind}_dropout.yaml"
        header = [
            f"{Path(base).name} with federated unit dropout, {kind}: encoder blocks {option['blocks']} at rate "
            f"{option['rate']}, modules {', '.join(modules)}, conv_norm {conv_norm}",
            f"({why[kind]}).",
            f"Drops {plan.dropped_parameters:,} parameters per training step ({100 * plan.dropped_fraction:.2f} % of the encoder's).",
            f"Written by: python -m espnet_lrsms.bin.analysis_unit_dropout_configs {command}",
        ]
        write_config_yaml(path, dict(config, encoder_conf=conf), header)
        written.append(Written(kind, path, option, plan))
    return written
