"""The watcher that registers this package's classes with ESPnet right after ESPnet loads its task modules.

``espnet_lrsms_startup.pth`` (installed into site-packages with the package, a wheel and an editable install
alike: ``setup.py``) loads this file at Python start-up *by its path*, without importing ``espnet_lrsms``, and
calls :func:`install`: one import-system finder is added, nothing else. When a program imports
``espnet2.tasks.abs_task`` or ``espnet2.tasks.asr``, the finder runs, right after that module's body,
``espnet_lrsms.registration.after_espnet_import``, importing ``espnet_lrsms`` then through ``sys.path`` as any
import would: the copy in the current directory or the script's folder (``sys.path[0]``) wins over the installed
one, as without the hook. So ``python -m espnet2.bin.asr_train``, ``Speech2Text.from_pretrained`` and ESPnet's
spawned DDP workers accept ``encoder: lowrank_conformer`` and the other names without ``import espnet_lrsms``.
``import espnet_lrsms`` adds the same finder when the hook is off (:func:`register_when_espnet_loads`).

Errors are contained: a failure to import ``espnet_lrsms`` or to register is logged as one warning, ESPnet's
import goes on, and the registration is tried again at the next import of those ESPnet modules or of
``espnet_lrsms`` (the finder stays until everything is registered).

``ESPNET_LRSMS_NO_STARTUP_HOOK=1`` (or ``true``, ``yes``; any case) turns the hook off; ``0``, ``false``, ``no``
or an empty value leave it on. This module imports nothing but the standard library's ``os`` and ``sys``.
"""
import os
import sys

ENVIRONMENT_SWITCH = "ESPNET_LRSMS_NO_STARTUP_HOOK"
SWITCHED_OFF_BY = ("1", "true", "yes")
# the ESPnet modules after whose body the registration runs (registration.py says what each one allows)
WATCHED = ("espnet2.tasks.abs_task", "espnet2.tasks.asr")


def hook_disabled(environ=os.environ) -> bool:
    """Whether ``ESPNET_LRSMS_NO_STARTUP_HOOK`` turns the start-up hook off (``1``, ``true`` or ``yes``)."""
    return environ.get(ENVIRONMENT_SWITCH, "").strip().lower() in SWITCHED_OFF_BY


def install() -> None:
    """What ``espnet_lrsms_startup.pth`` runs: :func:`arm`, unless the environment turns the hook off."""
    if not hook_disabled():
        arm()


def arm() -> None:
    """Add the finder, once per process (also when another copy of this file added one)."""
    if not any(getattr(finder, "espnet_lrsms_watcher", False) for finder in sys.meta_path):
        sys.meta_path.insert(0, RegisterAfterESPnetImport())


def register_when_espnet_loads() -> None:
    """Register now what the loaded ESPnet modules allow, and arm the finder for the rest (what
    ``import espnet_lrsms`` runs). ESPnet not installed: nothing happens. Failures are logged, not raised
    (``espnet_lrsms.register()`` raises)."""
    from importlib.util import find_spec

    try:
        if find_spec("espnet2") is None:
            return
    except ImportError:  # an import system that refuses ESPnet
        return
    from espnet_lrsms import registration

    if not _registered_reporting(registration.after_espnet_import()):
        arm()


def _registered_reporting(outcome) -> bool:
    """``registration.after_espnet_import``'s outcome: each failure warned; whether everything is registered."""
    done, failures = outcome
    for module, error in failures:
        warn(error, f"registering espnet_lrsms's classes after {module} loaded")
    return done


def warn(error: BaseException, what: str) -> None:
    """One warning line per distinct failure (``logging``: imported only when something failed)."""
    import logging

    message = (f"espnet_lrsms: {what} failed ({type(error).__name__}: {error}); ESPnet goes on without "
               f"espnet_lrsms's classes (tried again at the next import of ESPnet's task modules or of espnet_lrsms; "
               f"{ENVIRONMENT_SWITCH}=1 turns the start-up hook off)")
    if message not in _WARNED:
        _WARNED.add(message)
        logging.getLogger("espnet_lrsms").warning("%s", message)


_WARNED = set()


class RegisterAfterESPnetImport:
    """A meta-path finder that finds nothing itself: for a module of :data:`WATCHED` it wraps the loader the
    other finders return, so that the registration runs after the module's body. (Not an ``importlib.abc``
    subclass: importing that costs milliseconds in every Python process.)"""

    espnet_lrsms_watcher = True

    def find_spec(self, name, path, target=None):
        if name not in WATCHED:
            return None
        for finder in sys.meta_path:
            if getattr(finder, "espnet_lrsms_watcher", False) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = ThenRegister(spec.loader, name, self)
        return spec


class ThenRegister:
    """The module's own loader, then the registration (an ESPnet import that fails registers nothing, and the
    finder stays for the next try)."""

    def __init__(self, loader, name: str, finder: RegisterAfterESPnetImport):
        self.loader, self.name, self.finder = loader, name, finder

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        try:
            from espnet_lrsms import registration  # through sys.path, now that it holds the program's folder

            done = _registered_reporting(registration.after_espnet_import(self.name))
        except Exception as error:  # noqa: BLE001  (a broken espnet_lrsms must not break ESPnet's import)
            warn(error, "importing espnet_lrsms to register its classes with ESPnet")
            return
        if done and self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)  # everything registered

    def __getattr__(self, name):  # get_source, get_code, is_package, ... of the real loader
        return getattr(self.loader, name)
