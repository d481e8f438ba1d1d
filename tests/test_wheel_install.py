"""The install users get: a wheel built from the sources, installed outside the source tree, imports every module."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = "espnet_lrsms"
pytestmark = pytest.mark.end_to_end  # builds and installs a wheel: about 20 s


def source_modules():
    return sorted(
        ".".join(path.relative_to(REPO).with_suffix("").parts)
        for path in (REPO / PACKAGE).rglob("*.py")
        if "__pycache__" not in path.parts
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``pip wheel`` on a fresh copy of the package (a stale ``build/`` in the checkout cannot leak in)."""
    src = tmp_path_factory.mktemp("src")
    shutil.copy(REPO / "setup.py", src)
    shutil.copy(REPO / "README.md", src)
    shutil.copytree(REPO / PACKAGE, src / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (built,) = out.glob(f"{PACKAGE}-*.whl")
    return built


def test_wheel_holds_every_module(wheel):
    with zipfile.ZipFile(wheel) as zf:
        in_wheel = sorted(
            name[: -len(".py")].replace("/", ".") for name in zf.namelist() if name.endswith(".py")
        )
    assert in_wheel == source_modules()


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed with ``pip install --target``: a site folder outside the source tree."""
    target = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return target


def test_every_module_imports_from_the_installed_wheel(installed, tmp_path):
    target = installed
    script = (
        "import importlib, sys\n"
        # the hook off (ESPNET_LRSMS_NO_STARTUP_HOOK=1), stock ESPnet's ASR task loads without this package's classes
        "from espnet2.tasks import asr\n"
        "print('HOOK OFF', 'lowrank_conformer' in asr.encoder_choices.classes, 'espnet_lrsms' in sys.modules)\n"
        f"sys.path.insert(0, {str(target)!r})\n"
        "bad = []\n"
        f"for name in {source_modules()!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    if not module.__file__.startswith({str(target)!r}):\n"
        "        bad.append((name, module.__file__))\n"
        "print('imported', len(sys.modules))\n"
        "assert not bad, bad\n"
    )
    # run from an empty folder: neither the checkout nor its editable install may supply a module (and the editable
    # install's start-up hook, which would import espnet_lrsms from the checkout before this script runs, is off)
    env = dict(os.environ, ESPNET_LRSMS_NO_STARTUP_HOOK="1")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "HOOK OFF False False" in result.stdout.splitlines()


def test_the_wheels_startup_hook_lets_stock_espnet_see_the_classes(wheel, installed, tmp_path):
    """The wheel puts espnet_lrsms_startup.pth at the top of site-packages. An interpreter whose only
    espnet_lrsms is the wheel's (site-packages processed by ``site``, the checkout's editable install left
    out) registers the classes when ESPnet's ASR task loads, without ``import espnet_lrsms``."""
    with zipfile.ZipFile(wheel) as zf:
        assert "espnet_lrsms_startup.pth" in zf.namelist()
    target = installed
    assert (target / "espnet_lrsms_startup.pth").is_file()
    import sysconfig

    script = (
        "import site, sys\n"
        # the venv's packages (ESPnet, torch) without running its .pth files (the editable espnet_lrsms)
        f"sys.path.append({sysconfig.get_paths()['purelib']!r})\n"
        f"site.addsitedir({str(target)!r})\n"  # what site does for site-packages: runs the wheel's .pth
        "from espnet2.tasks import asr\n"
        "cls = asr.encoder_choices.classes.get('lowrank_conformer')\n"
        "print(cls.__module__ if cls else None, sys.modules['espnet_lrsms'].__file__)\n"
    )
    result = subprocess.run([sys.executable, "-S", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    module, package_file = result.stdout.split()[-2:]
    assert module == "espnet_lrsms.asr.lowrank_conformer_encoder"
    assert package_file.startswith(str(target))
