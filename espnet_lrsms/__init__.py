"""espnet-lrsms: Low-Rank Speech Models from Scratch, as an extension of ESPnet.

Importing the package registers its classes with ESPnet's ASR task, so that
``ASRTask.build_model`` and ``Speech2Text`` accept ``encoder: lowrank_conformer``,
``decoder: lowrank_transformer`` and ``frontend: resnet1d``.
"""
from espnet_lrsms.registration import register

__version__ = "0.1.0"

register()
