"""The package's version (setup.py holds the same string); recorded in every pack's ``meta.yaml``."""
__version__ = "0.1.0"
