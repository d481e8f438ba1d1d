"""Schedules in epochs and per-GPU batches follow the real data and launch, at any corpus size, batch and GPU count."""
import logging

import pytest
import torch
import yaml
from espnet2.samplers.build_batch_sampler import build_batch_sampler

from espnet_lrsms.asr.task import LowRankASRTask
from espnet_lrsms.train.epoch_steps import PER_GPU_OPTIONS, resolve_training_sizes
from espnet_lrsms.train.schedulers import WarmupConstantSqrtCooldownLR, WarmupCosineLR

from conftest import REPO, write_tone_dataset

PAPER = REPO / "conf" / "asr" / "train_asr_conformer_lrsms.yaml"
TINY = REPO / "conf" / "demo" / "train_asr_lrsms_tiny.yaml"


def write_shapes(path, num_utts, seed):
    """A LibriSpeech-like shape file: utterances of 2-20 s at 16 kHz."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2 * 16000, 20 * 16000, (num_utts,), generator=gen)
    path.write_text("".join(f"utt{i:06d} {n}\n" for i, n in enumerate(lengths.tolist())))
    return path


def paper_args(shape_file, *extra):
    parser = LowRankASRTask.get_parser()
    return parser.parse_args(
        ["--config", str(PAPER), "--token_list", "x", "--output_dir", "x",
         "--train_data_path_and_name_and_type", f"{shape_file.parent}/wav.scp,speech,sound",
         "--train_shape_file", str(shape_file), *extra]
    )


def resolve(args):
    parser = LowRankASRTask.get_parser()
    resolve_training_sizes(args, {name: parser.get_default(name) for name in PER_GPU_OPTIONS.values()})
    return args


def paper_schedule(args):
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=6e-4)
    return WarmupConstantSqrtCooldownLR(optimizer, **args.scheduler_conf)


def espnet_batches(shape_file, batch_bins):
    return len(list(build_batch_sampler(type="length", batch_size=1, batch_bins=batch_bins, shape_files=[str(shape_file)])))


@pytest.mark.parametrize("num_utts", [3000, 12000])
@pytest.mark.parametrize("ngpu", [1, 4])
def test_paper_schedule_follows_corpus_size_and_gpu_count(tmp_path, num_utts, ngpu):
    shapes = write_shapes(tmp_path / "speech_shape", num_utts, seed=num_utts)
    args = resolve(paper_args(shapes, "--ngpu", str(ngpu)))
    # per GPU 2400 frames: ESPnet's global batch_bins is that times the GPUs the batch is split over
    assert args.batch_bins == 1_536_000 * ngpu
    steps = args.scheduler_conf["steps_per_epoch"]
    assert steps == espnet_batches(shapes, 1_536_000 * ngpu)
    # 2-20 s utterances, 96 s per GPU: about 8.6 utterances per GPU and step
    assert steps == pytest.approx(num_utts / (8.6 * ngpu), rel=0.15)
    schedule = paper_schedule(args)
    assert (schedule.warmup_steps, schedule.cooldown_steps, schedule.total_steps) == (5 * steps, 15 * steps, 75 * steps)
    # the rate is the peak from the end of epoch 5 to the start of epoch 60, above 0 until the last step
    assert schedule.factor(5 * steps - 1) == 1.0 and schedule.factor(60 * steps) == 1.0
    assert schedule.factor(60 * steps + 1) < 1.0
    assert schedule.factor(75 * steps - 1) > 0.0 and schedule.factor(75 * steps) == 0.0


def test_accum_grad_and_num_iters_per_epoch_count_optimiser_steps(tmp_path):
    shapes = write_shapes(tmp_path / "speech_shape", 5000, seed=1)
    plain = resolve(paper_args(shapes)).scheduler_conf["steps_per_epoch"]
    assert resolve(paper_args(shapes, "--accum_grad", "2")).scheduler_conf["steps_per_epoch"] == plain // 2
    assert resolve(paper_args(shapes, "--accum_grad", "3")).scheduler_conf["steps_per_epoch"] == plain // 3
    fixed = resolve(paper_args(shapes, "--num_iters_per_epoch", "1000", "--accum_grad", "4"))
    assert fixed.scheduler_conf["steps_per_epoch"] == 250


def test_a_given_steps_per_epoch_far_from_the_count_warns_naming_both(tmp_path, caplog):
    shapes = write_shapes(tmp_path / "speech_shape", 3000, seed=2)
    counted = resolve(paper_args(shapes)).scheduler_conf["steps_per_epoch"]
    with caplog.at_level(logging.WARNING):
        args = resolve(paper_args(shapes, "--scheduler_conf", "steps_per_epoch=1125"))
    assert args.scheduler_conf["steps_per_epoch"] == 1125  # kept, as given
    assert f"steps_per_epoch=1125 is given, but an epoch of this data and launch has {counted}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        resolve(paper_args(shapes, "--scheduler_conf", f"steps_per_epoch={round(counted * 1.04)}"))
    assert "steps_per_epoch" not in caplog.text  # within 5 %


def test_per_gpu_and_global_batch_together_is_an_error(tmp_path):
    shapes = write_shapes(tmp_path / "speech_shape", 100, seed=3)
    with pytest.raises(ValueError, match="give batch_bins_per_gpu or batch_bins, not both"):
        resolve(paper_args(shapes, "--batch_bins", "3000000"))


def test_uncountable_iterator_needs_steps_per_epoch(tmp_path):
    shapes = write_shapes(tmp_path / "speech_shape", 100, seed=4)
    with pytest.raises(ValueError, match="counted only for iterator_type sequence"):
        resolve(paper_args(shapes, "--iterator_type", "chunk"))


def test_epochs_without_steps_per_epoch_outside_the_task_is_named():
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    with pytest.raises(ValueError, match=r"scheduler_conf.steps_per_epoch: warmup_epochs=5 needs"):
        WarmupCosineLR(optimizer, warmup_epochs=5, total_epochs=75)
    with pytest.raises(ValueError, match="give warmup_steps or warmup_epochs, not both"):
        WarmupCosineLR(optimizer, warmup_steps=3, warmup_epochs=5, total_epochs=75, steps_per_epoch=10)


# ---- the real trainer: the schedule ends exactly where training does


def train(config, data, valid, out, *extra):
    from espnet_lrsms.bin.asr_train import main

    main([
        "--config", str(config), "--output_dir", str(out), "--ngpu", "0", "--seed", "0",
        "--token_type", "char", "--token_list", str(out.parent / "tokens.txt"), "--use_preprocessor", "true",
        "--train_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
        "--train_data_path_and_name_and_type", f"{data}/text,text,text",
        "--valid_data_path_and_name_and_type", f"{valid}/wav.scp,speech,sound",
        "--valid_data_path_and_name_and_type", f"{valid}/text,text,text",
        "--train_shape_file", f"{data}/speech_shape", "--valid_shape_file", f"{valid}/speech_shape",
        "--use_tensorboard", "false", "--num_att_plot", "0", "--max_epoch", "3",
        "--scheduler_conf", "warmup_epochs=1", "--scheduler_conf", "cooldown_epochs=1",
        "--scheduler_conf", "total_epochs=null",  # default: max_epoch
        *extra,
    ])
    checkpoint = torch.load(out / "checkpoint.pth", map_location="cpu", weights_only=False)
    return checkpoint["schedulers"][0], checkpoint["reporter"]["stats"]


@pytest.mark.end_to_end
@pytest.mark.parametrize(
    "num_utts, batch, accum_grad, steps_per_epoch",
    [
        (16, ["--batch_type", "unsorted", "--batch_size_per_gpu", "4"], 1, 4),
        # batches counted by ESPnet's length sampler; accum_grad 2 halves the optimiser steps
        (24, ["--batch_type", "length", "--batch_bins_per_gpu", "40000"], 2, None),
    ],
)
def test_trainer_takes_exactly_the_scheduled_steps(tone_data, tmp_path, num_utts, batch, accum_grad, steps_per_epoch):
    data = tone_data / "train" if num_utts == 16 else write_tone_dataset(tmp_path / "train", num_utts, seed=7)
    valid = write_tone_dataset(tmp_path / "valid", 2, seed=8)
    config = yaml.safe_load(TINY.read_text())
    config.pop("batch_bins")  # sized per GPU on the command line
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "tokens.txt").write_text((tone_data / "tokens.txt").read_text())
    schedule, stats = train(tmp_path / "tiny.yaml", data, valid, tmp_path / "exp", *batch, "--accum_grad", str(accum_grad))
    if steps_per_epoch is None:
        batches = espnet_batches(data / "speech_shape", 40000)
        assert 6 <= batches < num_utts
        steps_per_epoch = batches // accum_grad
    assert schedule["warmup_steps"] == schedule["cooldown_steps"] == steps_per_epoch
    assert schedule["total_steps"] == 3 * steps_per_epoch
    # the trainer took exactly total_steps optimiser steps in max_epoch epochs
    assert schedule["last_epoch"] == schedule["total_steps"]
    lrs = [stats[epoch]["train"]["optim0_lr0"] for epoch in (1, 2, 3)]
    assert lrs[0] < lrs[1] and 0 < lrs[2] < lrs[1]  # warm-up, constant, cooling down but never 0
