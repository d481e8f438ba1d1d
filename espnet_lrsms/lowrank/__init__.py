"""The pure-PyTorch low-rank core: factorized layer, rank schedules, by-name factorization, declarative options."""
from espnet_lrsms.lowrank.factorize import (
    LayerPlan,
    factorize_planned_linears,
    key_mismatch,
    load_exact_state_dict,
    materialize_spectral_init_,
    plan_block_ranks,
    reinit_factorized_,
    require_exact_keys_on_load,
)
from espnet_lrsms.lowrank.factorized_linear import (
    FactorizedLinear,
    break_even_rank,
    frobenius_decay_grads,
    shared_input_linears,
    truncated_svd_factors,
)
from espnet_lrsms.lowrank.options import OptionError, option, read_options
from espnet_lrsms.lowrank.schedule import (
    SCHEDULES,
    AlphaSchedule,
    LowRankConfig,
    LowRankConfigError,
    parse_schedule,
    rank_for,
    register_schedule,
)

__all__ = [
    "AlphaSchedule",
    "FactorizedLinear",
    "LayerPlan",
    "LowRankConfig",
    "LowRankConfigError",
    "OptionError",
    "SCHEDULES",
    "break_even_rank",
    "factorize_planned_linears",
    "frobenius_decay_grads",
    "key_mismatch",
    "load_exact_state_dict",
    "materialize_spectral_init_",
    "option",
    "parse_schedule",
    "plan_block_ranks",
    "rank_for",
    "read_options",
    "register_schedule",
    "reinit_factorized_",
    "require_exact_keys_on_load",
    "shared_input_linears",
    "truncated_svd_factors",
]
