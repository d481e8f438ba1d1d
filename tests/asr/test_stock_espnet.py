"""Stock ESPnet sees this package's classes without ``import espnet_lrsms``: the start-up hook
(``espnet_lrsms_startup.pth``, installed with the package) arms the registration in every Python process.

Every command here runs in a fresh interpreter, as a user runs ESPnet's own entry points. The wheel's
hook is tested in tests/test_wheel_install.py.
"""
import os
import subprocess
import sys

import pytest
import torch
import yaml

from asr_test_data import STEPS, TINY, train_command
from conftest import REPO

from espnet_lrsms.fileio import load_weights_only
from espnet_lrsms.lowrank import FactorizedLinear

def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, cwd=kwargs.pop("cwd", REPO), **kwargs)


# Stock ESPnet knows the classes without ``import espnet_lrsms`` (hook on): tests/test_startup_hook.py
# ::test_the_copy_on_sys_path_0_is_the_one_the_hook_registers and, for the wheel, tests/test_wheel_install.py
# ::test_the_wheels_startup_hook_lets_stock_espnet_see_the_classes; with ESPNET_LRSMS_NO_STARTUP_HOOK=1 it does
# not: tests/test_wheel_install.py::test_every_module_imports_from_the_installed_wheel (its first lines).


def stock(command):
    """The same training command through ESPnet's own entry point."""
    assert command[1:3] == ["-m", "espnet_lrsms.bin.asr_train"]
    return [command[0], "-m", "espnet2.bin.asr_train", *command[3:]]


@pytest.fixture(scope="module")
def trained_both_ways(tone_experiment, tone_data, tmp_path_factory):
    """The session's tone experiment (``python -m espnet_lrsms.bin.asr_train``, 2 epochs, conftest.py) and its
    first epoch again through ``python -m espnet2.bin.asr_train``, with the same arguments."""
    out = tmp_path_factory.mktemp("stock") / "espnet2"
    result = run(stock(train_command(tone_data, out, "--max_epoch", "1", *STEPS)))
    assert result.returncode == 0, result.stderr[-3000:]
    return {"espnet_lrsms": tone_experiment, "espnet2": out}


@pytest.mark.end_to_end
def test_stock_asr_train_trains_the_same_model(trained_both_ways):
    """python -m espnet2.bin.asr_train equals python -m espnet_lrsms.bin.asr_train, weight for weight."""
    ours = load_weights_only(trained_both_ways["espnet_lrsms"] / "1epoch.pth")
    theirs = load_weights_only(trained_both_ways["espnet2"] / "1epoch.pth")
    assert sorted(ours) == sorted(theirs)
    assert any(key.endswith(".u") for key in ours)  # factorized layers, trained
    for key in ours:
        torch.testing.assert_close(theirs[key], ours[key], atol=0, rtol=0, msg=key)
    assert (trained_both_ways["espnet_lrsms"] / "0epoch.pth").is_file()  # W(0): the only difference
    assert not (trained_both_ways["espnet2"] / "0epoch.pth").exists()


@pytest.mark.end_to_end
def test_stock_inference_and_from_pretrained_decode_a_pack(trained_both_ways, tone_data, tmp_path):
    """The stock-trained experiment packed (``espnet_lrsms.bin.pack``, here in the test process), then, in one
    fresh interpreter as a user runs them: ESPnet's ``asr_inference`` command (its ``main``) decodes the
    experiment, and ``Speech2Text.from_pretrained`` decodes the pack to the same hypothesis."""
    from espnet_lrsms.bin import pack as pack_command

    exp = trained_both_ways["espnet2"]
    pack = tmp_path / "model.zip"
    assert pack_command.main(["asr", "--asr_train_config", str(exp / "config.yaml"),
                              "--asr_model_file", str(exp / "1epoch.pth"), "--outpath", str(pack)]) in (0, None)
    train = tone_data / "train"
    decoded = tmp_path / "decoded"
    inference_args = ["--ngpu", "0", "--batch_size", "1", "--data_path_and_name_and_type", f"{train}/wav.scp,speech,sound",
                      "--asr_train_config", str(exp / "config.yaml"), "--asr_model_file", str(exp / "1epoch.pth"),
                      "--output_dir", str(decoded), "--beam_size", "2", "--ctc_weight", "0.3"]
    first = sorted(line.split()[0] for line in (train / "wav.scp").read_text().splitlines())[0]
    script = (
        "import sys, soundfile\n"
        "from espnet2.bin import asr_inference\n"
        f"asr_inference.main({inference_args!r})\n"  # python -m espnet2.bin.asr_inference ...
        "from espnet2.bin.asr_inference import Speech2Text\n"
        f"s2t = Speech2Text.from_pretrained({str(pack)!r}, beam_size=2, ctc_weight=0.3)\n"
        f"wave, _ = soundfile.read({str(train / 'wav' / (first + '.wav'))!r}, dtype='float32')\n"
        "print(repr(s2t(wave)[0][0]))\n"
        "print('espnet_lrsms.lowrank' in sys.modules)\n"
    )
    result = run([sys.executable, "-c", script], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    hyps = {}
    for line in (decoded / "1best_recog" / "text").read_text().splitlines():
        key, *text = line.split(maxsplit=1)
        hyps[key] = " ".join(text)
    assert len(hyps) == 16
    text, lowrank_used = result.stdout.strip().splitlines()[-2:]
    assert eval(text).strip() == hyps[first].strip()  # the pack decodes as the experiment does
    assert lowrank_used == "True"


def build_with(task, config=TINY, **overrides):
    from espnet_lrsms.train.build import dummy_token_list

    args = task.get_parser().parse_args(["--config", str(config), "--token_list", "x"])
    args.token_list = dummy_token_list(12)
    for key, value in overrides.items():
        setattr(args, key, value)
    return args, task.build_model(args)


def train_forward(model):
    model.train()
    speech = torch.randn(2, 16000)
    return model(speech, torch.tensor([16000, 12000]), torch.tensor([[3, 4, 5], [6, 7, 0]]), torch.tensor([3, 2]))


@pytest.mark.parametrize("task_name", ["espnet2", "espnet_lrsms"])
def test_espnet_init_is_refused_by_the_stock_task_and_repaired_by_ours(task_name):
    from espnet2.tasks.asr import ASRTask

    from espnet_lrsms.asr.task import LowRankASRTask

    _, model = build_with(ASRTask if task_name == "espnet2" else LowRankASRTask, init="xavier_uniform")
    layers = [m for m in model.modules() if isinstance(m, FactorizedLinear)]
    if task_name == "espnet2":
        assert all(layer.redrawn_by_espnet_init for layer in layers)
        with pytest.raises(RuntimeError, match=r"--init re-drew U and Vᵀ of \d+ factorized layer.*espnet_lrsms.bin.asr_train"):
            train_forward(model)
    else:
        assert not any(layer.redrawn_by_espnet_init for layer in layers)
        loss = train_forward(model)[0]
        assert torch.isfinite(loss)


@pytest.mark.parametrize("task_name", ["espnet2", "espnet_lrsms"])
def test_frobenius_decay_is_refused_without_the_optimizer_hook(task_name, tmp_path):
    from espnet2.tasks.asr import ASRTask

    from espnet_lrsms.asr.task import LowRankASRTask

    config = yaml.safe_load(TINY.read_text())
    config["encoder_conf"]["lowrank"]["frobenius_decay"] = 0.01
    path = tmp_path / "decay.yaml"
    path.write_text(yaml.safe_dump(config))
    task = ASRTask if task_name == "espnet2" else LowRankASRTask
    args, model = build_with(task, path)
    if task_name == "espnet2":
        task.build_optimizers(args, model)  # ESPnet's: no decay
        with pytest.raises(RuntimeError, match="frobenius_decay is 0.01, but no optimizer applies it"):
            train_forward(model)
    else:
        task.build_model_optimizers(args, model)
        assert torch.isfinite(train_forward(model)[0])
    model.eval()
    with torch.no_grad():  # decoding is never refused
        encoded, _ = model.encode(torch.randn(1, 16000), torch.tensor([16000]))
    assert torch.isfinite(encoded).all()
