"""The recipes' job runners (cmd.sh): utils/run_local.sh and utils/slurm.sh, with Kaldi's run.pl calling convention.

There is no SLURM here: a stand-in ``sbatch`` on PATH records its arguments and runs the job script once per
array task, as SLURM would, so the test sees both the command slurm.sh builds and the logs its script writes.
"""
import os
import subprocess

import pytest

from conftest import REPO

UTILS = REPO / "egs2" / "TEMPLATE" / "asr1" / "utils"

FAKE_SBATCH = r"""#!/usr/bin/env bash
printf '%s\n' "$@" > "$SBATCH_RECORD"
script=${@: -1} array=""
for arg in "$@"; do [[ "$arg" == --array=* ]] && array=${arg#--array=}; done
status=0
if [[ -n "$array" ]]; then
    range=${array%%%*}
    for ((id = ${range%-*}; id <= ${range#*-}; id++)); do SLURM_ARRAY_TASK_ID=$id bash "$script" || status=1; done
else
    bash "$script" || status=1
fi
echo 4242
exit $status
"""


def _fake_slurm(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    (bin_dir / "sbatch").chmod(0o755)
    record = tmp_path / "sbatch_args"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SBATCH_RECORD": str(record)}
    return env, record


def test_slurm_builds_the_sbatch_array_and_writes_each_tasks_log(tmp_path):
    env, record = _fake_slurm(tmp_path)
    logdir = tmp_path / "exp dir" / "logdir"
    result = subprocess.run(
        [str(UTILS / "slurm.sh"), "--gpu", "1", "--mem", "4G", "--num_threads", "2", "--max_jobs_run", "3",
         "--partition", "gpu", "--time", "1:00:00", "JOB=1:4", str(logdir / "decode.JOB.log"),
         "echo", "task JOB", "a b", "$HOME"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    args = record.read_text().splitlines()
    script = logdir / "q" / "decode.sh"
    assert args == ["--parsable", "--wait", "--export=ALL", "--job-name=decode", "--gres=gpu:1", "--mem=4G",
                    "--cpus-per-task=2", "--partition=gpu", "--time=1:00:00", "--array=1-4%3",
                    f"--output={logdir}/q/decode.%a.out", str(script)]
    for job in range(1, 5):
        log = (logdir / f"decode.{job}.log").read_text().splitlines()
        assert log[0].startswith("# echo") and log[1].startswith("# Started at")
        assert log[2] == f"task {job} a b $HOME"  # JOB replaced, every word passed as it was given
        assert log[-1].startswith("# Ended (code 0)")


def test_slurm_without_an_array_and_a_failing_task(tmp_path):
    env, record = _fake_slurm(tmp_path)
    ok = subprocess.run([str(UTILS / "slurm.sh"), "--gpu", "0", str(tmp_path / "train.log"), "true"],
                        env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    args = record.read_text().splitlines()
    assert not any(a.startswith(("--array", "--gres")) for a in args) and f"--output={tmp_path}/q/train.out" in args
    failed = subprocess.run([str(UTILS / "slurm.sh"), "JOB=1:2", str(tmp_path / "x.JOB.log"), "test", "JOB", "-eq", "1"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert failed.returncode != 0
    assert f"SLURM job 4242 failed (exit 1); see {tmp_path}/x.*.log" in failed.stderr
    assert "# Ended (code 1)" in (tmp_path / "x.2.log").read_text()


def test_run_local_honours_max_jobs_run(tmp_path):
    lock, counts = tmp_path / "running", tmp_path / "counts"
    lock.mkdir()
    job = f"touch {lock}/JOB; ls {lock} | wc -l >> {counts}; sleep 0.3; rm {lock}/JOB; test JOB -ne 4"
    result = subprocess.run([str(UTILS / "run_local.sh"), "--max_jobs_run", "2", "JOB=1:5", str(tmp_path / "log.JOB"),
                             "bash", "-c", job], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"job 4 failed, see {tmp_path}/log.4" in result.stderr
    assert max(int(n) for n in counts.read_text().split()) == 2  # never more than two at once
    assert len(counts.read_text().split()) == 5  # every job ran


@pytest.mark.parametrize("runner", ["run_local.sh", "slurm.sh"])
def test_only_the_whole_job_token_is_replaced(tmp_path, runner):
    """An experiment path that holds the letters JOB (``--expdir .../xJOBy/exp``) keeps them: only the token
    ESPnet's commands use (``asr_inference.JOB.log``, ``keys.JOB.scp``, ``split4/JOB``) is the job number."""
    env, _ = _fake_slurm(tmp_path)
    logdir = tmp_path / "xJOBy" / "exp_JOB_1" / "logdir"
    result = subprocess.run(
        [str(UTILS / runner), "JOB=1:2", str(logdir / "decode.JOB.log"),
         "echo", "keys.JOB.scp", "split4/JOB", "JOB", f"{tmp_path}/xJOBy/exp", "exp_JOB_1", "JOBS"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for job in (1, 2):
        out = (logdir / f"decode.{job}.log").read_text().splitlines()[2]
        assert out == f"keys.{job}.scp split4/{job} {job} {tmp_path}/xJOBy/exp exp_JOB_1 JOBS"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("x") and p.name != "xJOBy"]  # no stray x1y, x2y


@pytest.mark.parametrize("options, jobs, expected", [
    ([], "JOB=1:2", lambda cores: str(max(1, cores // 2))),            # two at once: half the cores each
    ([], "JOB=1:3", lambda cores: str(max(1, cores // 3))),
    (["--max_jobs_run", "1"], "JOB=1:3", lambda cores: "unset"),       # one at a time: every core, as without jobs
    ([], "JOB=1:1", lambda cores: "unset"),                           # a single job (the launcher's training)
])
def test_run_local_gives_jobs_side_by_side_their_share_of_the_cores(tmp_path, options, jobs, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    result = subprocess.run([str(UTILS / "run_local.sh"), *options, jobs, str(tmp_path / "log.JOB"),
                             "bash", "-c", "echo omp=${OMP_NUM_THREADS:-unset}"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    cores = len(os.sched_getaffinity(0))
    logs = sorted(tmp_path.glob("log.*"))
    assert logs and all(f"\nomp={expected(cores)}\n" in log.read_text() for log in logs)


def test_run_local_leaves_a_users_omp_num_threads_alone(tmp_path):
    result = subprocess.run([str(UTILS / "run_local.sh"), "JOB=1:2", str(tmp_path / "log.JOB"),
                             "bash", "-c", "echo omp=$OMP_NUM_THREADS"],
                            capture_output=True, text=True, timeout=60, env=dict(os.environ, OMP_NUM_THREADS="3"))
    assert result.returncode == 0, result.stderr
    assert all("\nomp=3\n" in log.read_text() for log in tmp_path.glob("log.*"))
