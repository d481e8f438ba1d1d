"""The package's version (``setup.py`` reads it from here), recorded in every pack's ``meta.yaml``, and the
modules a release removed, for a pack or config made before it that names one (CHANGELOG.md tells the rest).

Plain literals only: ``setup.py`` reads ``__version__`` from this file's text without importing the package."""
__version__ = "0.3.0"

# release -> {removed module or function: what replaced it}; a name ending in a function is matched exactly,
# a module also as the start of a longer dotted name (a class or function in it)
REMOVED_IN = {
    "0.2.0": {
        "espnet_lrsms.tasks.asr": "espnet_lrsms.asr.task",
        "espnet_lrsms.tasks.avsr": "espnet_lrsms.avsr.task",
        "espnet_lrsms.tasks.lm": "espnet_lrsms.lm.task",
        "espnet_lrsms.tasks.lm_scorer": "espnet_lrsms.lm.scorer",
        "espnet_lrsms.tasks.avsr_speech2text": "espnet_lrsms.avsr.transcriber (MP4Transcriber)",
        "espnet_lrsms.tasks.avsr_inference": "espnet_lrsms.avsr.inference",
        "espnet_lrsms.tasks.build": "espnet_lrsms.train.build",
        "espnet_lrsms.tasks.compress": "espnet_lrsms.asr.compress_checkpoint",
        "espnet_lrsms.tasks.full_rank_warmup": "espnet_lrsms.asr.full_rank_warmup",
        "espnet_lrsms.tasks.packing": "espnet_lrsms.packing",
        "espnet_lrsms.tasks": "espnet_lrsms.asr, espnet_lrsms.avsr and espnet_lrsms.lm (one wing per model family)",
        "espnet_lrsms.train.time_mask": "espnet_lrsms.asr.time_mask",
        "espnet_lrsms.train.held_entries": "espnet_lrsms.nets.held_entries",
        "espnet_lrsms.asr.unit_dropout.hold_dropped_units":
            "espnet_lrsms.train.step_hooks (UnitDropout is a step hook that HookedTrainer attaches)",
        "espnet_lrsms.analysis.schedule_fit": "espnet_lrsms.analysis.fit_rank_schedule",
        "espnet_lrsms.analysis.signatures": "espnet_lrsms.analysis.numerical_signatures",
        "espnet_lrsms.recipe.avsr_sweep": "espnet_lrsms.recipe.avsr_snr_sweep",
        "espnet_lrsms.recipe.hf_repo": "espnet_lrsms.recipe.hf_model_repo",
    },
    "0.3.0": {
        # issue 34: what the ASR and LM wings share moved below them, to espnet_lrsms.text
        "espnet_lrsms.lm.nbest": "espnet_lrsms.text.nbest",
        "espnet_lrsms.lm.text.TOKEN_TYPES": "espnet_lrsms.text.tokens.TOKEN_TYPES",
        "espnet_lrsms.lm.text.text_cleaner": "espnet_lrsms.text.tokens.text_cleaner",
        "espnet_lrsms.lm.text.token_counter": "espnet_lrsms.text.tokens.token_counter",
        "espnet_lrsms.lm.text.write_text_shapes": "espnet_lrsms.text.tokens.write_text_shapes",
    },
}
