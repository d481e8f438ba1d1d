"""Run by ``espnet_lrsms_startup.pth`` when Python starts, so stock ESPnet sees this package's classes.

The install puts ``espnet_lrsms_startup.pth`` into site-packages (a wheel and an editable install
alike: ``setup.py``). Python's :mod:`site` runs its one ``import`` line at start-up, which imports this
module, which arms the deferred registration of :mod:`espnet_lrsms.registration`: nothing of ESPnet is
imported here, only a finder is added that registers the classes right after ESPnet loads its task
modules. So ``python -m espnet2.bin.asr_train``, ``python -m espnet2.bin.asr_inference``,
``Speech2Text.from_pretrained`` and ESPnet's spawned DDP workers accept ``encoder: lowrank_conformer``
and the other names without ``import espnet_lrsms``.

``ESPNET_LRSMS_NO_STARTUP_HOOK=1`` in the environment turns it off (then ``import espnet_lrsms`` does
the same, as before). An error here is printed, never raised: it must not stop an interpreter starting.
"""
import sys

try:
    from espnet_lrsms.registration import register_when_espnet_loads

    register_when_espnet_loads()
except Exception as error:  # noqa: BLE001  (any failure: report it and let Python start)
    print(
        f"espnet_lrsms start-up hook: {type(error).__name__}: {error} (ESPnet will not know espnet_lrsms's classes "
        "unless you import espnet_lrsms; ESPNET_LRSMS_NO_STARTUP_HOOK=1 turns the hook off)",
        file=sys.stderr,
    )
