"""Shared fixtures: a tiny ASR dataset in ESPnet's data-directory layout, generated on the fly."""
import math
import os
import re
import shutil
import subprocess
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile

REPO = Path(__file__).resolve().parents[1]
FS = 16000
ALPHABET = "abcdefgh"


# ---- the suite on every core (pytest-xdist; pytest.ini: -n auto --dist loadgroup --no-loadscope-reorder)

# session runs that several test files share: every test that uses one runs in the worker that made it
SHARED_RUNS = ("librispeech_demo", "tone_experiment")


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per core this process may run on (the affinity mask, as ``nproc`` counts)."""
    return _usable_cores()


# the user's OMP_NUM_THREADS (None: unset), before pytest_configure sets a worker's share
USER_OMP_NUM_THREADS = os.environ.get("OMP_NUM_THREADS")


def pytest_configure(config):
    """Each worker computes with its share of the cores: ``OMP_NUM_THREADS=max(1, cores // workers)`` for torch in
    the worker and for every process a test starts (recipes, training), unless the user set it. Without it every
    worker's torch would start a thread per core, and GNU OpenMP's threads spin while they wait for one."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and not os.environ.get("OMP_NUM_THREADS"):
        os.environ["OMP_NUM_THREADS"] = str(max(1, _usable_cores() // int(workers)))


# fixtures wider than a test that cost next to nothing to make again in another worker
CHEAP_FIXTURES = {"tmp_path_factory", "tone_data", "worker_id", "testrun_uid"}


def work_units(items):
    """``{node id: group}``: tests that share a module- or session-scoped fixture (other than
    :data:`CHEAP_FIXTURES`) are one unit, so it is made once; a test that shares none is a unit of its own."""
    parent = {}

    def find(key):
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    keys = {}
    for item in items:
        infos = getattr(item, "_fixtureinfo", None)
        defs = infos.name2fixturedefs if infos else {}
        keys[item.nodeid] = [f"{defs[name][-1].baseid}::{name}" for name in item.fixturenames
                             if name in defs and defs[name][-1].scope != "function" and name not in CHEAP_FIXTURES]
        for key in keys[item.nodeid][1:]:
            parent[find(key)] = find(keys[item.nodeid][0])
    members = {}
    for item in items:
        if keys[item.nodeid]:
            members.setdefault(find(keys[item.nodeid][0]), set()).update(keys[item.nodeid])
    names = {root: next((run for run in SHARED_RUNS if any(k.endswith("::" + run) for k in keys_)), root)
             for root, keys_ in members.items()}
    return {item.nodeid: names[find(keys[item.nodeid][0])] if keys[item.nodeid] else item.nodeid for item in items}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the node ids
def pytest_collection_modifyitems(config, items):
    """Work units for the workers (:func:`work_units`). The units of the shared runs go first: the README demo's is
    the longest, and a worker starts it while the others take the rest."""
    groups = work_units(items)
    for item in items:
        if groups[item.nodeid] != item.nodeid:  # a test on its own needs no group
            item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))
    rank = {run: i for i, run in enumerate(SHARED_RUNS)}
    items.sort(key=lambda item: rank.get(groups[item.nodeid], len(SHARED_RUNS)))


@pytest.hookimpl(trylast=True)  # after xdist's hook
def pytest_collection_finish(session):
    """A worker whose tests lost their group would make the shared runs again (pytest 9.2 with xdist 3.8, pytest-xdist
    issue 1386): stop, naming the fix, rather than run the suite twice as long."""
    grouped = [item for item in session.items if item.get_closest_marker("xdist_group")]
    if os.environ.get("PYTEST_XDIST_WORKER") and session.config.getvalue("loadgroup") and grouped:
        if not grouped[0].nodeid.endswith("@" + grouped[0].get_closest_marker("xdist_group").args[0]):
            raise pytest.UsageError(f"pytest {pytest.__version__} drops pytest-xdist's test groups (pytest-xdist issue "
                                    f"1386): pip install 'pytest<9.2' (setup.py's test extra), or run with -n 0")


# README's demo runs alone on the machine, as README measured it: its numbers depend on how many threads torch
# sums with, and two workers' threads on 2 cores wait for each other (the demo took 3.5 times as long beside the
# other worker). Each test holds a shared lock on a file of the run; the demo takes it exclusively, through a
# turnstile that stops the other workers from taking it again while the demo waits.

def _run_lock(config, name):
    """An open file of this run, shared by its workers (None without workers)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    locks = getattr(config, "_lrsms_locks", None)
    if locks is None:
        locks = config._lrsms_locks = {}
    if name not in locks:
        locks[name] = open(config._tmp_path_factory.getbasetemp().parent / f"{name}.lock", "a")
    return locks[name]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    import fcntl

    machine, turnstile = _run_lock(item.config, "machine"), _run_lock(item.config, "turnstile")
    if machine is None:
        return (yield)
    fcntl.flock(turnstile, fcntl.LOCK_EX)
    fcntl.flock(machine, fcntl.LOCK_SH)
    fcntl.flock(turnstile, fcntl.LOCK_UN)
    try:
        return (yield)
    finally:
        fcntl.flock(machine, fcntl.LOCK_UN)


class machine_to_itself:
    """``with machine_to_itself(config):`` the other workers wait (between their tests) until the block ends."""

    def __init__(self, config):
        self.machine, self.turnstile = _run_lock(config, "machine"), _run_lock(config, "turnstile")

    def __enter__(self):
        import fcntl

        if self.machine is not None:
            fcntl.flock(self.turnstile, fcntl.LOCK_EX)
            fcntl.flock(self.machine, fcntl.LOCK_EX)  # this worker's own shared lock becomes exclusive

    def __exit__(self, *exc):
        import fcntl

        if self.machine is not None:
            fcntl.flock(self.machine, fcntl.LOCK_SH)
            fcntl.flock(self.turnstile, fcntl.LOCK_UN)


def module_from_file(path: Path):
    """A script of this repository that is not part of the package (demo/, bench/) as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tone_utterance(text: str, rng: random.Random) -> np.ndarray:
    """One 0.16 s tone per letter, a letter's pitch fixed, with a little noise: a learnable toy."""
    pieces = []
    for ch in text:
        freq = 300.0 + 120.0 * ALPHABET.index(ch)
        t = np.arange(int(0.16 * FS)) / FS
        pieces.append(0.5 * np.sin(2 * math.pi * freq * t) * np.hanning(len(t)))
    wave = np.concatenate(pieces) + 0.01 * np.array([rng.gauss(0, 1) for _ in range(len(pieces) * len(t))])
    return wave.astype(np.float32)


def write_tone_dataset(root: Path, num_utts: int, seed: int) -> Path:
    """Write wav files plus wav.scp, text and speech_shape (ESPnet's layout) under ``root``."""
    rng = random.Random(seed)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    scp, text, shape = [], [], []
    for i in range(num_utts):
        uid = f"utt{i:03d}"
        words = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(2, 4))) for _ in range(2)]
        wave = _tone_utterance("".join(words), rng)
        path = root / "wav" / f"{uid}.wav"
        soundfile.write(path, wave, FS)
        scp.append(f"{uid} {path}\n")
        text.append(f"{uid} {' '.join(words)}\n")
        shape.append(f"{uid} {len(wave)}\n")
    (root / "wav.scp").write_text("".join(scp))
    (root / "text").write_text("".join(text))
    (root / "speech_shape").write_text("".join(shape))
    return root


@pytest.fixture(scope="session")
def tone_data(tmp_path_factory) -> Path:
    """A tiny train set (16 utterances) and a token list for character units."""
    root = tmp_path_factory.mktemp("tone_data")
    write_tone_dataset(root / "train", 16, seed=0)
    tokens = ["<blank>", "<unk>", "<space>"] + list(ALPHABET) + ["<sos/eos>"]
    (root / "tokens.txt").write_text("\n".join(tokens) + "\n")
    return root


@pytest.fixture(scope="session")
def tone_experiment(tone_data, tmp_path_factory) -> Path:
    """The tiny LR-SMS config trained on ``tone_data`` once per session through ``espnet_lrsms.bin.asr_train``
    (a fresh interpreter, as a user runs it): 2 epochs with the steps per epoch given (so stock ESPnet can repeat
    it), ESPnet's experiment directory with ``0epoch.pth`` (W(0)), ``1epoch.pth``, ``2epoch.pth``,
    ``checkpoint.pth``, ``train.log`` and ``config.yaml``. Tests read it; what they write goes under ``analysis/``
    or their own ``tmp_path``."""
    from asr_test_data import STEPS, train_command

    out = tmp_path_factory.mktemp("tone_experiment") / "asr_tiny"
    result = subprocess.run(train_command(tone_data, out, "--max_epoch", "2", *STEPS), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


# ---- the demo recipe, trained once per session (tests of the recipes and of the analysis tools use it)

LIBRI_RECIPE = REPO / "egs2" / "librispeech" / "asr1"
LRS3_RECIPE = REPO / "egs2" / "lrs3" / "asr1"
DEMO_ARGS = [
    "--ngpu", "0", "--nbpe", "30", "--nj", "2", "--inference_nj", "2",
    "--asr_config", "conf/demo/train_asr_lrsms_tiny.yaml",
    "--inference_config", "conf/demo/decode_asr_tiny.yaml",
    "--inference_asr_model", "valid.acc.best.pth",
]
TAG = "train_asr_lrsms_tiny_raw_en_bpe30"
DECODE = "decode_asr_tiny_asr_model_valid.acc.best"


def run_recipe(recipe, env_name, corpus, work, *args):
    env = dict(os.environ, **{env_name: str(corpus)})
    result = subprocess.run(
        ["./run.sh", *DEMO_ARGS, "--datadir", str(work / "data"), "--expdir", str(work / "exp"), *args],
        cwd=recipe, env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def results_tables(results_md: str) -> str:
    """RESULTS.md less ESPnet's "## Environments" block (its date and git commit change with every run)."""
    return re.sub(r"^## Environments\n(?:(?!## ).*\n)*", "", results_md, flags=re.M)


def wer_of(results_md, dataset):
    match = re.search(rf"^\|{re.escape(DECODE)}/{dataset}\|(\d+)\|(\d+)\|[\d.]+\|[\d.]+\|[\d.]+\|[\d.]+\|([\d.]+)\|", results_md, re.M)
    assert match, results_md
    return float(match.group(3))


def checkout_copy(root: Path, recipe: Path) -> Path:
    """``recipe`` in a copy of the checkout's recipe files (egs2/, conf/; the venv linked) under ``root``."""
    copy = root / "lrsms checkout"
    shutil.copytree(REPO / "egs2", copy / "egs2", symlinks=True, ignore=shutil.ignore_patterns("data", "exp"))
    shutil.copytree(REPO / "conf", copy / "conf", symlinks=True)
    (copy / ".venv").symlink_to(REPO / ".venv")
    return copy / recipe.relative_to(REPO)


def recipe_from_template(root: Path, name: str = "mine") -> Path:
    """A new ``egs2/<name>/asr1`` in a copy of the checkout (:func:`checkout_copy`) with the template's ``asr.sh``,
    ``cmd.sh``, ``path.sh`` and ``utils/`` linked, as docs/recipes.md's "Add a corpus" says, and an empty ``local/``."""
    template = checkout_copy(root, REPO / "egs2" / "TEMPLATE" / "asr1")
    recipe = template.parents[1] / name / "asr1"
    (recipe / "local").mkdir(parents=True)
    for link in ("asr.sh", "cmd.sh", "path.sh", "utils"):
        (recipe / link).symlink_to(Path("../../TEMPLATE/asr1") / link)
    return recipe


def stage_11_inputs(tmp_path: Path):
    """What stage 11 checks for before training, as placeholders (the LibriSpeech recipe's default sets, bpe30):
    ``(datadir, asr_stats_dir)`` under ``tmp_path``; stage 10's ``feats_stats.npz`` is left out."""
    data, dump, stats = tmp_path / "data", tmp_path / "dump" / "raw", tmp_path / "exp" / "asr_stats_raw_en_bpe30"
    bpe = data / "en_token_list" / "bpe_unigram30"
    bpe.mkdir(parents=True)
    (bpe / "bpe.model").write_text("x")
    (bpe / "tokens.txt").write_text("<blank>\n")
    for dset in ("train_960", "dev"):
        (dump / dset).mkdir(parents=True)
        for name in ("wav.scp", "text"):
            (dump / dset / name).write_text("u1 x\n")
    for part in ("train", "valid"):
        (stats / part).mkdir(parents=True)
        (stats / part / "speech_shape").write_text("u1 16000\n")
    return data, stats


def readme_demo_command():
    """README's demo command, as it stands there: ``(corpus root, run.sh arguments)`` of its code block."""
    import shlex

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^## Demo.*?```bash\ncd egs2/librispeech/asr1\n(.*?)```", readme, re.S | re.M)
    assert block, "README.md: no demo code block starting with 'cd egs2/librispeech/asr1'"
    words = shlex.split(block.group(1).replace("\\\n", " "))  # continuation lines joined, as bash does
    run = words.index("./run.sh")
    env = dict(word.split("=", 1) for word in words[:run])
    corpus = (LIBRI_RECIPE / env.pop("LIBRISPEECH")).resolve()
    assert not env and corpus == REPO / "demo" / "librispeech", (env, corpus)
    return corpus, words[run + 1 :]


def readme_demo_table():
    """README's demo table: ``{dataset: {column: value}}`` (the dataset less its note), and the tolerance README
    states for WER and CER (percentage points)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Demo"):]
    section = section[: section.index("\n## ", 1)]
    tolerance = re.search(r"within ([\d.]+) points", section)
    assert tolerance, "README's demo section states no tolerance ('within N points')"
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0]]
    table = {}
    for row in rows[2:]:
        cells = [cell.strip().strip("*") for cell in row]
        table[cells[0].split()[0]] = {name: float(cell) for name, cell in zip(header[1:], cells[1:])}
    return table, float(tolerance.group(1))


@pytest.fixture(scope="session")
def librispeech_demo(tmp_path_factory, pytestconfig):
    """README's demo command, run once per test session: (work dir, stdout of both runs).

    The command is read from README.md and run as it stands there, in two parts as a user re-runs from ESPnet's
    training stage: stages 1-10, then ``--stage 11`` on, adding only what changes the stages after scoring (the
    pack and the Hugging Face model repository of stages 14-15, which are off by default). It runs from a copy of
    the recipe in a directory whose name holds a space, and writes data/ and exp/ there: every path the stages pass
    around has a space in it. Everything that needs a trained demo model uses this run.
    """
    work = tmp_path_factory.mktemp("librispeech demo")
    recipe = checkout_copy(work, LIBRI_RECIPE)
    corpus, args = readme_demo_command()
    # as a user runs it: torch's threads as the user set them (unset: one per core), not the worker's share; the
    # number of threads changes how the tiny model's sums round, and README's table was measured with every core
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    env.update(LIBRISPEECH=str(corpus), **({"OMP_NUM_THREADS": USER_OMP_NUM_THREADS} if USER_OMP_NUM_THREADS else {}))
    with machine_to_itself(pytestconfig):  # the other workers wait: README's figures were measured on all cores
        return work, readme_demo_run(recipe, args, work, env)


def readme_demo_run(recipe, args, work, env):
    """The demo's two parts (stages 1-10, then 11 on) in ``recipe``: their stdout."""
    stdout = ""
    for part in (["--stop_stage", "10"], ["--stage", "11", "--skip_packing", "false", "--skip_upload_hf", "false"]):
        result = subprocess.run(["./run.sh", *args, "--datadir", str(work / "data"), "--expdir", str(work / "exp"), *part],
                                cwd=recipe, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        stdout += result.stdout
    return stdout
