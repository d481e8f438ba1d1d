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


@pytest.mark.end_to_end  # fresh interpreters importing ESPnet: about 13 s each
def test_lowrank_import_leaves_espnet_unloaded_and_registration_follows_espnets_import():
    """ESPnet installed: ``import espnet_lrsms.lowrank`` does not load it; ESPnet's task modules, imported
    later (the LM task alone first, then the ASR task), find this package's classes registered."""
    script = (
        "import sys\n"
        "import espnet_lrsms.lowrank\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('espnet', 'espnet2')]\n"
        "import espnet2.tasks.lm\n"
        "from espnet2.tasks import abs_task\n"
        "assert 'warmup_cosine' in abs_task.scheduler_classes and 'espnet2.tasks.asr' not in sys.modules\n"
        "from espnet2.bin.asr_inference import Speech2Text\n"
        "from espnet2.tasks import asr\n"
        "assert asr.encoder_choices.get_class('lowrank_conformer').__name__ == 'LowRankConformerEncoder'\n"
        "assert not [f for f in sys.meta_path if type(f).__module__ == 'espnet_lrsms.registration']\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.split()[-1:] == ["ok"], result.stdout[-2000:] + result.stderr[-2000:]
