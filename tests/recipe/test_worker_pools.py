"""The stages' worker pools never fork a process whose torch (OpenMP) thread pool has run.

Before espnet_lrsms.workers, stage 3's workers were forked from the calling process: after any parallel torch op
in that process (the AVSR crops' resize, as test_avsr_recipe_roi.py runs before test_format_audio.py), a worker's
first resampling waited for ever in libgomp. The reproducing order runs here ten times in one process.
"""
import os
import re
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile

ROUNDS = 10

REPRODUCER = textwrap.dedent("""
    import sys
    from pathlib import Path

    import numpy as np
    import torch

    from espnet_lrsms.avsr.roi import resize_frames
    from espnet_lrsms.recipe.format_audio import format_data_dir

    def main(data, out):
        torch.set_num_threads(2)
        for round in range({rounds}):
            frames = np.random.default_rng(round).integers(0, 255, (50, 240, 320)).astype(np.uint8)
            resize_frames(frames, 88)  # a parallel torch op in this process (OpenMP's pool starts)
            utterances, written = format_data_dir(data, out / str(round), fs=16000, nj=2)  # 8 kHz: resampled
            print(round, utterances, written, flush=True)


    if __name__ == "__main__":  # as Python asks of a script that starts processes other than by fork
        main(Path(sys.argv[1]), Path(sys.argv[2]))
""")


@pytest.mark.end_to_end  # a fresh interpreter running stage 3 ten times with its worker pools: ~18 s
def test_stage_3_workers_resample_after_torch_ran_in_the_caller(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        soundfile.write(tmp_path / f"u{i}.wav", np.sin(np.arange(4000) / 7.0).astype(np.float32) * 0.3, 8000)
    (data / "wav.scp").write_text("".join(f"u{i} {tmp_path}/u{i}.wav\n" for i in range(4)))
    (data / "text").write_text("".join(f"u{i} a\n" for i in range(4)))
    (data / "utt2spk").write_text("".join(f"u{i} s{i}\n" for i in range(4)))
    script = tmp_path / "reproduce.py"
    script.write_text(REPRODUCER.format(rounds=ROUNDS))
    process = subprocess.Popen([sys.executable, str(script), str(data), str(tmp_path / "out")], text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the script and its hung workers
        stdout, stderr = process.communicate()
        pytest.fail(f"stage 3's workers hung after torch ran in the caller; rounds done: {stdout.split()}")
    assert process.returncode == 0, stderr[-3000:]
    rounds = [line for line in stdout.splitlines() if re.fullmatch(r"\d+ \d+ \d+", line)]  # (ESPnet may print notices)
    assert rounds == [f"{r} 4 4" for r in range(ROUNDS)]  # every file resampled, every round
    for i in range(4):
        wave, rate = soundfile.read(tmp_path / "out" / str(ROUNDS - 1) / "data" / f"u{i}.flac")
        assert rate == 16000 and len(wave) == 8000


def _worker_threads(_) -> tuple:
    import torch

    return torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")


@pytest.mark.parametrize("nj", [1, 2, 3])
def test_each_worker_computes_with_its_share_of_the_cores(nj, monkeypatch):
    """nj workers share the cores: max(1, cores // nj) torch threads each (and OMP_NUM_THREADS for their
    children), so two decoders on two cores do not start four threads."""
    from espnet_lrsms.workers import process_pool, usable_cores

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    share = max(1, usable_cores() // nj)
    with process_pool(nj, preload=("torch",)) as pool:
        seen = set(pool.map(_worker_threads, range(4 * nj)))
    assert seen == {(share, str(share))}


def test_omp_num_threads_set_by_the_user_holds_in_every_worker(monkeypatch):
    from espnet_lrsms.workers import process_pool, threads_per_job

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads_per_job(2) is None
    with process_pool(2) as pool:
        assert set(pool.map(_worker_threads, range(4))) == {(3, "3")}
