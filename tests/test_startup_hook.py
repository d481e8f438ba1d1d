"""The start-up hook (espnet_lrsms_startup.pth, issue 33 items 12 and 13): it imports nothing of espnet_lrsms
at start-up, so the copy on ``sys.path[0]`` is the one ESPnet's import registers; a failing registration is
logged once, never breaks ESPnet's import, and is retried until it succeeds. Each check runs a fresh
interpreter of the environment the tests run in, whose site-packages holds the hook (any editable install)."""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import REPO

from espnet_lrsms.startup_hook import hook_disabled

PTH = Path(sysconfig.get_paths()["purelib"]) / "espnet_lrsms_startup.pth"
needs_the_hook = pytest.mark.skipif(not PTH.is_file(), reason=f"no {PTH}: the package is not installed here")


def python(script, cwd, **env):
    environ = {k: v for k, v in os.environ.items() if k != "ESPNET_LRSMS_NO_STARTUP_HOOK"}
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True,
                          env=dict(environ, **env))


def test_only_1_true_or_yes_turn_the_hook_off():
    for value in ("1", "true", "TRUE", "yes", " Yes "):
        assert hook_disabled({"ESPNET_LRSMS_NO_STARTUP_HOOK": value}), value
    for value in ("0", "false", "no", "", "off?"):
        assert not hook_disabled({"ESPNET_LRSMS_NO_STARTUP_HOOK": value}), value
    assert not hook_disabled({})


@pytest.mark.end_to_end  # fresh interpreters importing ESPnet: about 13 s each
@needs_the_hook
def test_the_copy_on_sys_path_0_is_the_one_the_hook_registers(tmp_path):
    """A second checkout (a copy of the package with a marker) run from its own folder: its copy is imported
    when ESPnet's task loads, not the installed one; ``ESPNET_LRSMS_NO_STARTUP_HOOK=0`` leaves the hook on.

    The same interpreter shows (one ESPnet import serves all):
    - stock ESPnet knows the classes without ``import espnet_lrsms`` (nothing of it imported at start-up);
    - ``import espnet_lrsms.lowrank`` leaves ESPnet unloaded;
    - the registration follows ESPnet's import: ESPnet's LM task alone first (the schedulers, not yet the ASR
      task), then the ASR task (the encoder), after which no watcher of the registration is left."""
    checkout = tmp_path / "second_checkout"
    shutil.copytree(REPO / "espnet_lrsms", checkout / "espnet_lrsms", ignore=shutil.ignore_patterns("__pycache__"))
    init = checkout / "espnet_lrsms" / "__init__.py"
    init.write_text(init.read_text() + "\nCHECKOUT = 'second'\n")
    script = (
        "import sys\n"
        "assert not [m for m in sys.modules if m.startswith('espnet_lrsms')], 'imported at start-up'\n"
        "import espnet_lrsms.lowrank\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('espnet', 'espnet2')], 'lowrank loaded ESPnet'\n"
        "import espnet2.tasks.lm\n"
        "from espnet2.tasks import abs_task\n"
        "assert 'warmup_cosine' in abs_task.scheduler_classes and 'espnet2.tasks.asr' not in sys.modules\n"
        "from espnet2.bin.asr_inference import Speech2Text\n"
        "from espnet2.tasks import asr\n"
        "cls = asr.encoder_choices.classes.get('lowrank_conformer')\n"
        "assert not [f for f in sys.meta_path if type(f).__module__ == 'espnet_lrsms.registration']\n"
        "package = sys.modules.get('espnet_lrsms')\n"
        "print('RESULT', getattr(package, 'CHECKOUT', 'installed') if package else 'not-imported',\n"
        "      sys.modules[cls.__module__].__file__ if cls else 'not-registered')\n"
    )
    result = python(script, checkout, ESPNET_LRSMS_NO_STARTUP_HOOK="0")
    assert result.returncode == 0, result.stderr[-3000:]
    marker, encoder_file = result.stdout.split("RESULT")[-1].split()
    assert marker == "second"
    assert encoder_file == str(checkout / "espnet_lrsms" / "asr" / "lowrank_conformer_encoder.py")


@pytest.mark.end_to_end  # fresh interpreters importing ESPnet: about 13 s each
@needs_the_hook
def test_a_failing_registration_is_logged_once_never_breaks_espnet_and_is_retried(tmp_path):
    script = (
        "import sys\n"
        "blocked = {'espnet2.schedulers.tristage_lr'}\n"
        "class Fault:\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name in blocked:\n"
        "            raise ImportError(f'planted fault in {name}')\n"
        "sys.meta_path.insert(0, Fault())\n"
        # 1. a module of espnet_lrsms is broken: ESPnet's import of abs_task (and of a task on it) works all the same
        "blocked = {'espnet_lrsms.train.schedulers'}\n"
        "import espnet2.tasks.abs_task as abs_task\n"
        "import espnet2.tasks.lm\n"
        "print('AFTER FAULT', 'warmup_cosine' in abs_task.scheduler_classes)\n"
        # 2. ESPnet's own import of its ASR task fails: nothing registered, nothing dropped
        "blocked = {'espnet2.asr.encoder.conformer_encoder'}\n"
        "try:\n"
        "    import espnet2.tasks.asr\n"
        "except ImportError as error:\n"
        "    print('ESPNET FAILED', error)\n"
        # 3. repaired: the next import of ESPnet's task modules registers everything
        "blocked = set()\n"
        "from espnet2.tasks import asr\n"
        "print('AFTER RETRY', 'warmup_cosine' in abs_task.scheduler_classes,\n"
        "      'lowrank_conformer' in asr.encoder_choices.classes)\n"
        "print('WATCHERS', sum(getattr(f, 'espnet_lrsms_watcher', False) for f in sys.meta_path))\n"
    )
    result = python(script, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "ESPNET FAILED planted fault in espnet2.asr.encoder.conformer_encoder" in lines
    assert "AFTER FAULT False" in lines
    assert "AFTER RETRY True True" in lines
    assert "WATCHERS 0" in lines  # everything registered: the finder is gone
    warnings = [line for line in result.stderr.splitlines() if line.startswith("espnet_lrsms:")]
    assert warnings == [
        "espnet_lrsms: registering espnet_lrsms's classes after espnet2.tasks.abs_task loaded failed (ImportError: "
        "planted fault in espnet_lrsms.train.schedulers); ESPnet goes on without espnet_lrsms's classes (tried again "
        "at the next import of ESPnet's task modules or of espnet_lrsms; ESPNET_LRSMS_NO_STARTUP_HOOK=1 turns the "
        "start-up hook off)"]
