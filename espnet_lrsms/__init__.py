"""espnet-lrsms: Low-Rank Speech Models from Scratch, as an extension of ESPnet.

Importing the package registers its classes with ESPnet (:mod:`espnet_lrsms.registration`), so that
``ASRTask.build_model`` and ``Speech2Text`` accept ``encoder: lowrank_conformer``,
``decoder: lowrank_transformer`` and ``frontend: resnet1d``. Without ESPnet installed, the pure-PyTorch
core :mod:`espnet_lrsms.lowrank` still imports and works; nothing is registered.
"""
from espnet_lrsms.registration import register

__version__ = "0.1.0"

try:
    import espnet2  # noqa: F401
except ModuleNotFoundError as error:
    if error.name != "espnet2":
        raise
else:
    register()
