"""Training in 2 processes (ESPnet's DistributedDataParallel over gloo, on the CPU) takes the same optimiser
step as training in one process on the same global batch: LR-SMS ASR, AVSR, federated unit dropout, Frobenius decay,
the full-rank warm-up and its switch, and the LoRA strategies that update differently (vanilla, dynamic, warmup).

How the runs are made the same:

* 2 processes: ESPnet's own ``env://``-less path for an external launcher: each rank runs the task's
  ``main`` with ``--ngpu 0 --multiprocessing_distributed false --dist_world_size 2 --dist_rank r
  --dist_backend gloo --dist_init_method file://...`` (what ``espnet2.bin.launch --host`` gives a CPU
  host). Both ranks live in one Python process each for all cases (:func:`run_rank`), so ESPnet is imported
  twice, not twice per case. ``--batch_size_per_gpu 2``: a global batch of 4, which ESPnet shards as
  ``batch[rank::2]``.
* 1 process (in the test process): ``--batch_size_per_gpu 2 --accum_grad 2`` on the utterances in the
  order u0 u2 u1 u3, so that its two accumulated mini-batches are the two ranks' halves. Not one batch
  of 4: BatchNorm (ResNet front ends, Conformer convolution) normalises over each process's own
  mini-batch under DDP, as over each accumulated mini-batch here. The LM has no BatchNorm: there both
  take batches of 4, for 3 steps.
* Randomness off (dropout, time masks, crops and flips, modality dropout): the ranks and the two
  accumulated mini-batches would draw different masks. Unit dropout stays on: its generator is seeded
  the same on every rank, one draw per optimiser step. AdamW's ``eps`` is 1e-3 in the ASR-like runs
  (:data:`ADAM_EPS`).

Running statistics of BatchNorm are buffers: DDP broadcasts rank 0's, so they are not compared.
"""
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ALPHABET, REPO, write_tone_dataset

WORLD = 2
TESTS = Path(__file__).resolve().parents[1]
TINY = REPO / "conf" / "demo" / "train_asr_lrsms_tiny.yaml"
DEMO = REPO / "conf" / "demo"
LM_CONF = REPO / "conf" / "lm" / "demo"
TRAIN = {"asr": "espnet_lrsms.bin.asr_train", "avsr": "espnet_lrsms.bin.avsr_train", "lm": "espnet_lrsms.bin.lm_train"}
# one case per model family and per way of changing the parameters: unit dropout on the ambient blocks stands for
# the critical ones too (the same masks on other block numbers), vanilla LoRA for mixed (the same update at
# per-layer ranks); both configs are built and trained in one process by test_unit_dropout.py and test_lm_strategies.py
ASR_CASES = {
    "lrsms": TINY,
    "ambient_dropout": DEMO / "train_asr_lrsms_tiny_6blocks_ambient_dropout.yaml",
    "frobenius_decay": TINY,
    "full_rank_warmup": TINY,
}
LORA = ("vanilla", "dynamic", "warmup")
LM_SENTENCES = 12  # 3 global batches of 4
# AdamW's eps for the ASR-like runs: its first step is lr·g/(|g| + eps), so with the default 1e-8 an entry whose
# gradient is rounding noise (a bias that the next BatchNorm cancels) moves by up to ±lr at random in each run
ADAM_EPS = 1e-3
SLACK_S = 1800  # the 2-process runs of all cases on a loaded 2-core machine


def run_rank(cases_file: str, rank: int) -> None:
    """One rank's process: every case's phases in turn (a training through the task's ``main``, or
    rank 0 switching a warm-up to low rank while rank 1 waits); an error both ranks raise (a refused
    option) is recorded in ``rank<r>.json`` and the next case starts."""
    import torch.distributed as dist

    cases_file = Path(cases_file)
    cases = json.loads(cases_file.read_text())
    results = {}
    for name, phases in cases.items():
        results[name] = None
        for k, phase in enumerate(phases):
            init = f"file://{cases_file.parent / f'.init_{name}_{k}'}"
            try:
                if phase["kind"] == "train":
                    importlib.import_module(TRAIN[phase["task"]]).main([
                        *phase["argv"], "--ngpu", "0", "--multiprocessing_distributed", "false",
                        "--dist_world_size", str(WORLD), "--dist_rank", str(rank), "--dist_backend", "gloo",
                        "--dist_init_method", init,
                    ])
                else:
                    from espnet_lrsms.asr.full_rank_warmup import switch_to_lowrank

                    dist.init_process_group("gloo", init_method=init, world_size=WORLD, rank=rank)
                    if rank == 0:
                        switch_to_lowrank(phase["exp_dir"], phase["config"])
                    dist.barrier()
            except Exception as error:  # noqa: BLE001 (recorded, and compared with the 1-process run)
                results[name] = f"{type(error).__name__}: {error}"
                break
            finally:
                if dist.is_initialized():
                    dist.destroy_process_group()
    (cases_file.parent / f"rank{rank}.json").write_text(json.dumps(results))


def quiet(config: Path, out: Path, **updates) -> Path:
    """``config`` with every random draw but unit dropout's off, and ``updates`` (``part={key: value}``)."""
    conf = yaml.safe_load(config.read_text())
    rates = {"encoder_conf": ("attention", "positional"), "decoder_conf": ("self_attention", "src_attention", "positional"),
             "lm_conf": ("attention", "positional")}  # ESPnet's defaults of these are not all 0
    for part, kinds in rates.items():
        if part in conf:
            conf[part].update({f"{kind}_dropout_rate": 0.0 for kind in kinds}, dropout_rate=0.0)
    for part in ("frontend_conf", "video_frontend_conf"):
        if part in conf:
            conf[part]["time_mask"] = None
    if "video_frontend_conf" in conf:
        conf["video_frontend_conf"].update(flip_prob=0.0)
    if "audio_dropout_prob" in conf.get("model_conf", {}):
        conf["model_conf"].update(audio_dropout_prob=0.0, video_dropout_prob=0.0)
    for part, values in updates.items():
        conf[part] = {**conf.get(part, {}), **values} if isinstance(values, dict) else values
    out.write_text(yaml.safe_dump(conf))
    return out


def reordered(shapes: Path, order) -> Path:
    """The shape file of ``order`` (utterance indices) beside ``shapes``: batches in that order."""
    lines = shapes.read_text().splitlines(keepends=True)
    ordered = shapes.with_name(f"{shapes.name}_{''.join(map(str, order))}")
    ordered.write_text("".join(lines[i] for i in order))
    return ordered


def av_args(data: Path, shape: Path, valid_shape: Path, streams) -> list:
    args = []
    for split, shape_file in (("train", shape), ("valid", valid_shape)):
        for scp, name, kind in streams:
            args += [f"--{split}_data_path_and_name_and_type", f"{data}/{scp},{name},{kind}"]
        args += [f"--{split}_shape_file", str(shape_file)]
    return args


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every case trained in 2 processes and in 1: ``{case: (one_dir, two_dir, error_of_two, error_of_one)}``."""
    from espnet2.tasks.lm import LMTask

    from asr_test_data import experiment
    from avsr_test_data import FRAME, tiny_config, write_av_dataset
    from espnet_lrsms.asr.full_rank_warmup import read_yaml, warmup_args

    root = tmp_path_factory.mktemp("distributed")
    # ---- data: 4 tone utterances; 4 audio-visual ones; 12 sentences of words
    asr = write_tone_dataset(root / "asr", 4, seed=0)
    (root / "tokens.txt").write_text("\n".join(["<blank>", "<unk>", "<space>", *ALPHABET, "<sos/eos>"]) + "\n")
    av = write_av_dataset(root / "av" / "train", ["ab cd", "ba dc", "ca bd", "dd ab"])
    lm = root / "lm"
    lm.mkdir()
    words = ["ab", "cd", "ef", "gh", "ba", "dc"]
    lines = [f"s{i:02d} " + " ".join(words[(i + j) % len(words)] for j in range(2 + i % 3)) for i in range(LM_SENTENCES)]
    (lm / "text").write_text("\n".join(lines) + "\n")
    (lm / "text_shape.word").write_text("".join(f"s{i:02d} {len(l.split()) - 1}\n" for i, l in enumerate(lines)))
    (lm / "tokens.txt").write_text("\n".join(["<blank>", "<unk>", *words, "<sos/eos>"]) + "\n")

    def asr_like(data, tokens, config, streams):
        shape = data / "speech_shape"
        one = av_args(data, reordered(shape, [0, 2, 1, 3]), reordered(shape, [0, 1]), streams)
        two = av_args(data, shape, reordered(shape, [0, 1]), streams)
        common = ["--config", str(config), "--seed", "0", "--token_type", "char", "--token_list", str(tokens),
                  "--use_preprocessor", "true", "--use_tensorboard", "false", "--batch_type", "unsorted",
                  "--batch_size_per_gpu", "2", "--max_epoch", "1", "--num_workers", "0",
                  "--scheduler_conf", "warmup_epochs=0.5", "--optim_conf", f"eps={ADAM_EPS}"]
        return [*common, *one, "--accum_grad", "2"], [*common, *two]

    wav = [("wav.scp", "speech", "sound"), ("text", "text", "text")]
    cases = {}  # case: (phases of the 1-process run, phases of the 2-process run); output dirs filled in below
    for case, base in ASR_CASES.items():
        updates = {}
        if case == "frobenius_decay":
            conf = yaml.safe_load(base.read_text())
            updates = {p: {"lowrank": {**conf[p]["lowrank"], "frobenius_decay": 0.05}} for p in ("encoder_conf", "decoder_conf")}
        if case == "full_rank_warmup":
            updates = {"max_epoch": 2}
        config = quiet(base, root / f"{case}.yaml", **updates)
        one, two = asr_like(asr, root / "tokens.txt", config, wav)
        if case == "full_rank_warmup":  # 1 dense epoch, the switch, 1 low-rank epoch (as asr.sh stage 11)
            warm = warmup_args(read_yaml(config), 1)
            strip = lambda argv: [a for i, a in enumerate(argv) if a != "--max_epoch" and argv[i - 1] != "--max_epoch"]
            cases[case] = tuple(
                [{"kind": "train", "task": "asr", "argv": strip(argv) + warm},
                 {"kind": "switch", "config": str(config)},
                 {"kind": "train", "task": "asr", "argv": strip(argv) + ["--max_epoch", "2", "--resume", "true"]}]
                for argv in (one, two)
            )
        else:
            cases[case] = ([{"kind": "train", "task": "asr", "argv": one}], [{"kind": "train", "task": "asr", "argv": two}])
    avsr = quiet(tiny_config(root / "avsr_tiny.yaml"), root / "avsr.yaml", video_frontend_conf={"crop_size": FRAME})
    one, two = asr_like(av, av.parent / "tokens.txt", avsr,
                        [*wav[:1], ("video.scp", "video", "video_npy"), wav[1]])
    cases["avsr"] = ([{"kind": "train", "task": "avsr", "argv": one}], [{"kind": "train", "task": "avsr", "argv": two}])

    base_lm, _ = experiment(LMTask, quiet(LM_CONF / "train_lm_transformer_tiny.yaml", root / "lm_base.yaml"),
                            root / "lm_base", vocab_size=len(words) + 3)
    lora_schedules = {"dynamic": {"tinit": 1, "tfinal": 1, "delta_t": 1}, "warmup": {"truncate_step": 1}}
    for strategy in LORA:
        config = yaml.safe_load((LM_CONF / f"lora_{strategy}_tiny.yaml").read_text())
        config["lora_conf"].update(lora_schedules.get(strategy, {}))
        (root / f"lora_{strategy}.yaml").write_text(yaml.safe_dump(config))
        argv = ["--config", str(root / f"lora_{strategy}.yaml"), "--seed", "0", "--token_type", "word",
                "--token_list", str(lm / "tokens.txt"), "--base_lm_config", str(base_lm / "config.yaml"),
                "--base_lm_file", str(base_lm / "model.pth"), "--max_epoch", "1", "--batch_size", "4",
                "--train_data_path_and_name_and_type", f"{lm}/text,text,text",
                "--valid_data_path_and_name_and_type", f"{lm}/text,text,text",
                "--train_shape_file", str(lm / "text_shape.word"), "--valid_shape_file", str(lm / "text_shape.word"),
                "--use_matplotlib", "false"]
        cases[f"lora_{strategy}"] = ([{"kind": "train", "task": "lm", "argv": argv}],) * 2

    def placed(phases, out):
        placed = []
        for phase in phases:
            if phase["kind"] == "train":
                phase = dict(phase, argv=[*phase["argv"], "--output_dir", str(out)])
            else:
                phase = dict(phase, exp_dir=str(out))
            placed.append(phase)
        return placed

    two_dir = root / "two"
    two_dir.mkdir()
    cases_file = two_dir / "cases.json"
    cases_file.write_text(json.dumps({c: placed(p[1], two_dir / c) for c, p in cases.items()}))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    code = "import sys; from train.test_distributed import run_rank; run_rank(sys.argv[1], int(sys.argv[2]))"
    ranks = [
        subprocess.Popen([sys.executable, "-c", code, str(cases_file), str(r)], cwd=TESTS, env=env,
                         stdout=subprocess.DEVNULL, stderr=(two_dir / f"rank{r}.log").open("w"))
        for r in range(WORLD)
    ]
    one_errors = {}
    try:
        for case, (phases, _) in cases.items():  # meanwhile, the 1-process runs in this process
            one_errors[case] = run_one(placed(phases, root / "one" / case))
        deadline = time.monotonic() + SLACK_S
        while any(p.poll() is None for p in ranks):
            failed = [p for p in ranks if p.returncode not in (None, 0)]
            if failed or time.monotonic() > deadline:
                break
            time.sleep(1)
    finally:
        for p in ranks:
            if p.poll() is None:
                p.kill()
                p.wait()
    logs = "\n".join((two_dir / f"rank{r}.log").read_text()[-3000:] for r in range(WORLD))
    assert all(p.returncode == 0 for p in ranks), logs
    two_errors = [json.loads((two_dir / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert two_errors[0] == two_errors[1], two_errors
    runs = {c: (root / "one" / c, two_dir / c, two_errors[0][c], one_errors[c]) for c in cases}
    runs["argv of lrsms"] = placed(cases["lrsms"][1], root / "cpu_processes")[0]["argv"] if "lrsms" in cases else None
    return runs


def run_one(phases) -> str:
    """The 1-process run of a case, in this process; its error message (None when it trained)."""
    from espnet_lrsms.asr.full_rank_warmup import switch_to_lowrank

    try:
        for phase in phases:
            if phase["kind"] == "train":
                importlib.import_module(TRAIN[phase["task"]]).main([*phase["argv"], "--ngpu", "0"])
            else:
                switch_to_lowrank(phase["exp_dir"], phase["config"])
    except Exception as error:  # noqa: BLE001
        return f"{type(error).__name__}: {error}"
    return None


def parameters(state: dict) -> dict:
    """Trained tensors of a state dict: not BatchNorm's running statistics (DDP broadcasts rank 0's)."""
    return {k: v for k, v in state.items() if v.is_floating_point() and "running_" not in k}


TRAINED = [*ASR_CASES, "avsr", *(f"lora_{s}" for s in LORA)]


@pytest.mark.end_to_end
@pytest.mark.parametrize("case", TRAINED)
def test_two_processes_take_the_step_of_one_on_the_same_global_batch(runs, case):
    one, two, error_two, error_one = runs[case]
    assert error_one is None and error_two is None, (error_one, error_two)
    epoch = "2epoch.pth" if case == "full_rank_warmup" else "1epoch.pth"
    got, want = parameters(torch.load(two / epoch)), parameters(torch.load(one / epoch))
    assert got.keys() == want.keys()
    if not case.startswith("lora_"):  # (the LoRA runs count their steps: next tests)
        start = torch.load(two / "0epoch.pth")
        moved = [k for k in want if want[k].shape == start[k].shape and not torch.equal(want[k], start[k])]
        assert len(moved) > len(want) // 2  # the run trained
    assert_same_step(got, want, case)


def assert_same_step(got: dict, want: dict, case: str) -> None:
    """Equal within float32 rounding (gradients summed in another order, by other numbers of threads and
    processes), as Adam passes it on: all entries within 1e-5, and at most 1 in 10⁴ beyond 1e-6."""
    off = 0
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-5, msg=lambda m: f"{case} {key}: {m}")
        off += (~torch.isclose(got[key], want[key], rtol=1e-5, atol=1e-6)).sum().item()
    assert off <= 1e-4 * sum(v.numel() for v in want.values()), off


@pytest.mark.end_to_end
@pytest.mark.parametrize("case", [*ASR_CASES, "avsr"])
def test_steps_per_epoch_count_optimiser_steps_of_the_world(runs, case):
    """4 utterances, 2 per process (or per accumulated mini-batch): one optimiser step an epoch in both runs
    (the per-GPU batch times the world size; counted per process it would be 2)."""
    one, two, *_ = runs[case]
    for out, batch_size, accum_grad in ((two, 4, 1), (one, 2, 2)):
        config = yaml.safe_load((out / "config.yaml").read_text())
        assert (config["batch_size"], config["accum_grad"]) == (batch_size, accum_grad)
        assert config["scheduler_conf"]["steps_per_epoch"] == 1
        assert config["unused_parameters"] is False  # DDP needs no find_unused_parameters
    assert yaml.safe_load((two / "config.yaml").read_text())["dist_world_size"] == WORLD


@pytest.mark.end_to_end
@pytest.mark.parametrize("strategy", LORA)
def test_lora_strategies_end_with_the_same_ranks_and_steps(runs, strategy):
    """3 steps (warmup: truncated after the first; dynamic: re-allocated at each)."""
    one, two, *_ = runs[f"lora_{strategy}"]
    got, want = (json.loads((d / "lora_ranks.json").read_text()) for d in (two, one))
    assert got == want and got["optimizer_steps"] == LM_SENTENCES // 4


@pytest.mark.end_to_end
def test_cpu_processes_option_trains_in_two_processes(runs):
    """``--ngpu 0 --cpu_processes 2`` (what ``asr.sh --ngpu 0 --asr_args "--cpu_processes 2"`` passes):
    the entry point starts the 2 ranks itself, and takes the same step."""
    argv = runs["argv of lrsms"]
    out = Path(argv[argv.index("--output_dir") + 1])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", TRAIN["asr"], *argv, "--ngpu", "0", "--cpu_processes", "2"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert (config["dist_world_size"], config["batch_size"], config["scheduler_conf"]["steps_per_epoch"]) == (2, 4, 1)
    one, *_ = runs["lrsms"]
    assert_same_step(parameters(torch.load(out / "1epoch.pth")), parameters(torch.load(one / "1epoch.pth")), "cpu_processes")


def test_cpu_processes_needs_the_cpu():
    from espnet_lrsms.asr.task import LowRankASRTask
    from espnet_lrsms.train.cpu_processes import cpu_world_size

    parse = lambda *argv: LowRankASRTask.get_parser().parse_args(["--token_list", "x", "--output_dir", "x", *argv])
    assert cpu_world_size(parse("--ngpu", "0", "--cpu_processes", "3")) == 3
    assert cpu_world_size(parse("--ngpu", "2")) == 1
    with pytest.raises(ValueError, match="--cpu_processes 2 trains on the CPU: give --ngpu 0"):
        cpu_world_size(parse("--ngpu", "1", "--cpu_processes", "2"))
    with pytest.raises(ValueError, match="drop --dist_rank"):
        cpu_world_size(parse("--ngpu", "0", "--cpu_processes", "2", "--dist_rank", "0"))


@pytest.mark.parametrize("config", [TINY, ASR_CASES["ambient_dropout"], DEMO / "train_asr_lrsms_tiny_6blocks_critical_dropout.yaml"],
                         ids=lambda p: p.stem)
def test_every_trainable_parameter_gets_a_gradient(tone_data, config):
    """What DDP without ``find_unused_parameters`` needs of every step: each trainable parameter in the
    backward graph (unit dropout zeroes the gradients of the dropped units; it does not skip them)."""
    import soundfile

    from espnet_lrsms.asr.build import build_asr_model

    torch.manual_seed(0)
    model = build_asr_model(config, vocab_size=12)
    tokens = (tone_data / "tokens.txt").read_text().split()
    waves, texts = [], []
    for line in (tone_data / "train" / "text").read_text().splitlines()[:2]:
        uid, text = line.split(maxsplit=1)
        waves.append(torch.from_numpy(soundfile.read(tone_data / "train" / "wav" / f"{uid}.wav", dtype="float32")[0]))
        texts.append(torch.tensor([tokens.index("<space>" if c == " " else c) for c in text]))
    pad = torch.nn.utils.rnn.pad_sequence
    loss, _, _ = model.train()(
        speech=pad(waves, batch_first=True), speech_lengths=torch.tensor([len(w) for w in waves]),
        text=pad(texts, batch_first=True, padding_value=-1), text_lengths=torch.tensor([len(t) for t in texts]),
    )
    loss.backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
