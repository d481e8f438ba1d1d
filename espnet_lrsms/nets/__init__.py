"""Shared building blocks of the ESPnet-facing layers, in pure PyTorch (nothing here imports ESPnet).

:mod:`~espnet_lrsms.nets.resnet`: the ResNet basic block and activation choice of both Auto-AVSR front
ends; :mod:`~espnet_lrsms.nets.espnet_names`: which attribute of ESPnet's blocks is which module type.
"""
