"""espnet-lrsms: Low-Rank Speech Models from Scratch, as an extension of ESPnet.

Importing the package registers its classes with ESPnet (:mod:`espnet_lrsms.registration`), so that
``ASRTask.build_model`` and ``Speech2Text`` accept ``encoder: lowrank_conformer``,
``decoder: lowrank_transformer`` and ``frontend: resnet1d``: at once when ESPnet's tasks are loaded,
otherwise as soon as ESPnet loads them. So the pure-PyTorch core :mod:`espnet_lrsms.lowrank` imports
without ESPnet (installed or not) and without its import time.
"""
from espnet_lrsms.registration import register
from espnet_lrsms.startup_hook import register_when_espnet_loads
from espnet_lrsms.version import __version__
__all__ = ["register", "__version__"]

register_when_espnet_loads()
