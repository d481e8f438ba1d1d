"""The ``--cpu_processes N`` launcher at its edges: collect-stats in one process, signals to the launcher,
threads per rank, the file rendezvous in the output directory, one-line refusals and failures.

The launcher calls ``task.main(cmd=...)`` in each rank. Most tests here give it ``cpu_probe.ProbeTask``,
whose ``main`` starts a rank as ESPnet does (ESPnet's ``DistributedOption`` from the launch options, gloo),
sums one number over the ranks and reports; so the launch is real and costs no ESPnet start-up per rank.
"""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from cpu_probe import ProbeTask
from espnet_lrsms.train.cpu_processes import RENDEZVOUS, run_cpu_processes

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FBANK = REPO / "conf" / "demo" / "train_asr_lrsms_tiny_fbank.yaml"


def reports(out: Path, world: int) -> list:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(world)]


@contextlib.contextmanager
def cores(n: int):
    """This process (and the ranks it spawns) on ``n`` of the machine's CPU cores."""
    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < n:
        pytest.skip(f"needs {n} CPU cores and sched_setaffinity")
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(before)[:n])
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def test_ranks_share_the_cores_and_meet_through_a_file_in_the_output_dir(tmp_path, monkeypatch, caplog):
    """2 ranks on 2 cores: one thread each (torch's default would be 2 each); the ranks meet through
    ``<output_dir>/.dist_init_cpu_processes`` although a killed run left its store there; the file is gone after."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    out = tmp_path / "exp dir"
    out.mkdir()
    stale = torch.distributed.FileStore(str(tmp_path / "store"), 2)  # a killed 2-rank run's store, keys and all
    stale.set("rank_0", "stale")
    (out / RENDEZVOUS).write_bytes((tmp_path / "store").read_bytes())
    del stale
    with cores(2):
        run_cpu_processes(ProbeTask, ["--output_dir", str(out), "--probe", "end"], 2, out)
    got = reports(out, 2)
    assert [(r["threads"], r["omp"], r["world"]) for r in got] == [(1, "1", 2)] * 2
    assert {r["init"] for r in got} == {f"file://{out / RENDEZVOUS}"}
    assert not (out / RENDEZVOUS).exists()
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_more_ranks_than_cores_are_warned_of_and_omp_num_threads_holds(tmp_path, monkeypatch, caplog):
    """2 ranks on 1 core: one warning line; with ``OMP_NUM_THREADS=2`` each rank computes with 2 threads
    (its share of the core would be 1)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with cores(1):
        run_cpu_processes(ProbeTask, ["--output_dir", str(tmp_path), "--probe", "end"], 2, tmp_path)
    assert [(r["threads"], r["omp"], r["world"]) for r in reports(tmp_path, 2)] == [(2, "2", 2)] * 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["--cpu_processes 2: more processes than the 1 CPU core(s) this machine gives them; they share the cores"]


def test_a_rank_killed_by_a_signal_is_named_in_one_line(tmp_path, capfd):
    with pytest.raises(SystemExit) as stop:
        run_cpu_processes(ProbeTask, ["--output_dir", str(tmp_path), "--probe", "die"], 2, tmp_path)
    assert stop.value.code == "--cpu_processes 2: rank 1 was killed by SIGKILL"
    assert "Traceback" not in capfd.readouterr().err  # (the ranks write to this stderr too)
    assert not (tmp_path / RENDEZVOUS).exists()


LAUNCHER = ("import sys; from cpu_probe import ProbeTask; from espnet_lrsms.train.cpu_processes import "
            "run_cpu_processes; run_cpu_processes(ProbeTask, sys.argv[2:], 2, sys.argv[1])")


def _alive(pid: int) -> bool:
    """``pid`` exists, not reaped (a zombie counts: its parent did not wait for it)."""
    return Path(f"/proc/{pid}").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_to_the_launcher_stops_and_reaps_the_ranks(tmp_path, signum):
    """The launcher in its own process, its 2 ranks writing to the output dir: ``signum`` to the launcher,
    and within seconds it has exited with 128 + ``signum``, both ranks reaped, their files still."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(tmp_path), "--output_dir", str(tmp_path),
                                 "--probe", "write"], env=env, stderr=subprocess.PIPE, text=True)
    pids = []
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"rank{r}.json").exists() for r in range(2)):
            assert launcher.poll() is None and time.monotonic() < deadline, launcher.stderr.read() if launcher.poll() else "slow"
            time.sleep(0.1)
        pids = [r["pid"] for r in reports(tmp_path, 2)]
        assert all(map(_alive, pids))
        launcher.send_signal(signum)
        code = launcher.wait(timeout=10)
        time.sleep(0.5)
        assert [pid for pid in pids if _alive(pid)] == []
        assert code == 128 + signum
        assert launcher.stderr.read().splitlines()[-1] == f"--cpu_processes 2: stopped by {signum.name}; the ranks were stopped"
        sizes = [(tmp_path / f"rank{r}.log").stat().st_size for r in range(2)]
        time.sleep(0.3)
        assert [(tmp_path / f"rank{r}.log").stat().st_size for r in range(2)] == sizes
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        for pid in pids:  # the ranks this test started, if the launcher left them running
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


# ---- through the ASR task (ESPnet's main in this process)

def _task():
    from espnet_lrsms.asr.task import LowRankASRTask

    return LowRankASRTask


@pytest.mark.parametrize("n", [0, -1])
def test_a_refused_number_of_processes_is_one_line(tmp_path, capfd, n):
    task = _task()
    capfd.readouterr()  # (what importing ESPnet printed)
    with pytest.raises(SystemExit) as stop:
        task.main(cmd=["--token_list", "x", "--output_dir", str(tmp_path), "--ngpu", "0", "--cpu_processes", str(n)])
    assert stop.value.code == f"--cpu_processes: expected a number >= 1, got {n}"
    assert capfd.readouterr().err == ""  # and Python prints the message alone: no traceback


def _feats(wav_scp: Path, frontend_conf: dict):
    """Count and mean of ESPnet's DefaultFrontend features over the utterances of ``wav_scp``."""
    import soundfile
    from espnet2.asr.frontend.default import DefaultFrontend

    frontend = DefaultFrontend(**frontend_conf).eval()
    frames = []
    with torch.no_grad():
        for line in wav_scp.read_text().splitlines():
            wave, _ = soundfile.read(line.split(maxsplit=1)[1], dtype="float32")
            feats, lengths = frontend(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
            frames.append(feats[0, : lengths[0]].double().numpy())
    frames = np.concatenate(frames)
    return len(frames), frames.mean(0)


def test_collect_stats_runs_in_one_process(tmp_path, tone_data):
    """Stage 10's command with ``--asr_args "--cpu_processes 2"``: the statistics of the 16 utterances,
    collected by this one process (no ranks, no rendezvous), equal to the front end's own."""
    train = tone_data / "train"
    out = tmp_path / "stats"
    _task().main(cmd=[
        "--collect_stats", "true", "--ngpu", "0", "--use_preprocessor", "true", "--token_type", "char",
        "--token_list", str(tone_data / "tokens.txt"),
        "--train_data_path_and_name_and_type", f"{train}/wav.scp,speech,sound",
        "--train_data_path_and_name_and_type", f"{train}/text,text,text",
        "--valid_data_path_and_name_and_type", f"{train}/wav.scp,speech,sound",
        "--valid_data_path_and_name_and_type", f"{train}/text,text,text",
        "--train_shape_file", f"{train}/speech_shape", "--valid_shape_file", f"{train}/speech_shape",
        "--output_dir", str(out), "--config", str(FBANK), "--cpu_processes", "2",
        "--normalize", "none", "--scheduler", "none", "--batch_size", "1",
    ])
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert (config["distributed"], config["dist_world_size"], config["cpu_processes"]) == (False, None, 2)
    assert not (out / RENDEZVOUS).exists()
    stats = np.load(out / "train" / "feats_stats.npz")
    count, mean = _feats(train / "wav.scp", yaml.safe_load(FBANK.read_text())["frontend_conf"])
    assert stats["count"] == count
    np.testing.assert_allclose(stats["sum"] / stats["count"], mean, rtol=1e-4, atol=1e-4)
    assert len((out / "train" / "speech_shape").read_text().splitlines()) == 16
