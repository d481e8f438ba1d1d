"""Shared by the ASR tests: the tiny demo config, the training command on the tone data set, and a saved
experiment (config.yaml + model.pth) of any task."""
import sys

import torch
import yaml

from espnet_lrsms.train.build import dummy_token_list

from conftest import REPO

TINY = REPO / "conf" / "demo" / "train_asr_lrsms_tiny.yaml"
TINY_ASR = TINY
# the tiny config's schedule is in epochs; stock ESPnet cannot count an epoch's optimiser steps, so runs that
# stock ESPnet repeats are given them (16 utterances / batch 4), as this package's task counts them
STEPS = ("--scheduler_conf", "steps_per_epoch=4")


def train_command(data, out, *extra):
    train = data / "train"
    return [
        sys.executable, "-m", "espnet_lrsms.bin.asr_train",
        "--config", str(TINY),
        "--output_dir", str(out),
        "--ngpu", "0",
        "--seed", "0",
        "--token_type", "char",
        "--token_list", str(data / "tokens.txt"),
        "--use_preprocessor", "true",
        "--train_data_path_and_name_and_type", f"{train}/wav.scp,speech,sound",
        "--train_data_path_and_name_and_type", f"{train}/text,text,text",
        "--valid_data_path_and_name_and_type", f"{train}/wav.scp,speech,sound",
        "--valid_data_path_and_name_and_type", f"{train}/text,text,text",
        "--train_shape_file", f"{train}/speech_shape",
        "--valid_shape_file", f"{train}/speech_shape",
        "--use_tensorboard", "false",
        "--batch_type", "unsorted",
        "--batch_size", "4",
        "--scheduler_conf", "warmup_epochs=0.5",
        *extra,
    ]



def experiment(task, config, out, vocab_size=12, **overrides):
    """``out/config.yaml`` and ``out/model.pth`` of a model ``task`` builds from ``config``, as ESPnet saves them."""
    out.mkdir(parents=True, exist_ok=True)
    args = task.get_parser().parse_args(["--config", str(config), "--token_list", "x", "--output_dir", str(out)])
    args.token_list = dummy_token_list(vocab_size)
    for key, value in overrides.items():
        setattr(args, key, value)
    torch.manual_seed(0)
    model = task.build_model(args)
    (out / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), out / "model.pth")
    return out, model.state_dict()
