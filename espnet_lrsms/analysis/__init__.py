"""Analysis tools: rank emergence (LR-SMS Fig. 1/3), rank-schedule fitting, numerical signatures.

Each module works on ESPnet checkpoints (state dicts) and has a command-line entry point in
``espnet_lrsms.bin``: ``rank_emergence``, ``fit_rank_schedule``, ``numerical_signatures``.
"""
