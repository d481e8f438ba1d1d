"""Registration happens in one place, and the pure-PyTorch core needs no ESPnet."""
import subprocess
import sys

import pytest

from conftest import REPO


def test_lowrank_core_imports_and_works_without_espnet():
    script = (
        "import sys, importlib.abc\n"
        "class NoESPnet(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('espnet', 'espnet2'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (blocked)', name=name)\n"
        "sys.meta_path.insert(0, NoESPnet())\n"
        "import torch\n"
        "from espnet_lrsms.lowrank import FactorizedLinear, LowRankConfig\n"
        "layer = FactorizedLinear.from_linear(torch.nn.Linear(32, 16), rank=16)\n"
        "x = torch.randn(3, 32)\n"
        "assert torch.allclose(layer(x), x @ (layer.u @ layer.vt).T + layer.bias, atol=1e-6)\n"
        "assert LowRankConfig.from_dict({'ffn': [0.2, 0.5]}).ffn.kind == 'linear'\n"
        "assert not any(m.split('.')[0] in ('espnet', 'espnet2') for m in sys.modules)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_import_registers_every_class_data_type_and_scheduler():
    from espnet2.tasks import abs_task, asr
    from espnet2.train import dataset

    import espnet_lrsms  # noqa: F401
    from espnet_lrsms.avsr.video_io import DATA_TYPES
    from espnet_lrsms.train.schedulers import SCHEDULERS

    assert asr.encoder_choices.get_class("lowrank_conformer").__name__ == "LowRankConformerEncoder"
    assert asr.decoder_choices.get_class("lowrank_transformer").__name__ == "LowRankTransformerDecoder"
    assert asr.frontend_choices.get_class("resnet1d").__name__ == "ResNet1DFrontend"
    assert asr.specaug_choices.get_class("adaptive_time_mask").__name__ == "AdaptiveTimeMask"
    for name, scheduler in SCHEDULERS.items():
        assert abs_task.scheduler_classes[name] is scheduler
    for name, entry in DATA_TYPES.items():
        assert dataset.DATA_TYPES[name] is entry
    espnet_lrsms.register()  # idempotent


def test_registration_is_the_only_module_that_writes_espnet_registries():
    """No other module mutates ESPnet's choices, scheduler or data-type tables."""
    offenders = []
    for path in (REPO / "espnet_lrsms").rglob("*.py"):
        if path.name == "registration.py":
            continue
        text = path.read_text(encoding="utf-8")
        for needle in ("scheduler_classes.setdefault", "scheduler_classes[", "DATA_TYPES.setdefault",
                       "DATA_TYPES[", "_choices.classes["):
            if needle in text and "espnet2" in text:
                offenders.append(f"{path.relative_to(REPO)}: {needle}")
    assert not offenders, offenders


# ``import espnet_lrsms.lowrank`` leaving ESPnet unloaded and the registration following ESPnet's import (LM task,
# then ASR task) are checked in the start-up hook's fresh interpreter: tests/test_startup_hook.py
# ::test_the_copy_on_sys_path_0_is_the_one_the_hook_registers (one ESPnet import serves both).
