"""A recipe of one's own corpus, as ESPnet users make them: egs2/<corpus>/asr1 with links to the template, a
run.sh and a local/data.sh (stage 1) that writes Kaldi data directories — here with commands in wav.scp, a
segments file and 8 kHz audio, which the recipe runs at --fs 8k (the dump and the front end at 8 kHz)."""
import os
import random
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from espnet_lrsms.asr.input_audio import trained_sampling_rate

from conftest import ALPHABET, REPO, _tone_utterance, checkout_copy
DATA_SH = r"""#!/usr/bin/env bash
# Kaldi data directories of a held-out corpus: <corpus>/<set>/{text, <utt>.wav or rec.wav + segments}
set -euo pipefail
corpus=""
while [[ $# -gt 0 ]]; do
    case $1 in --corpus) corpus=$2; shift 2 ;; *) echo "$0: unknown option $1" >&2; exit 1 ;; esac
done
for dset in ${SETS:-train dev test}; do
    mkdir -p "data/${dset}"
    cp "${corpus}/${dset}/text" "data/${dset}/text"
    if [[ -f "${corpus}/${dset}/segments" ]]; then  # one long recording, read through a command
        cp "${corpus}/${dset}/segments" "data/${dset}/segments"
        printf '%s cat %q |\n' "${dset}_rec" "${corpus}/${dset}/rec.wav" > "data/${dset}/wav.scp"
    else
        while read -r utt _; do printf '%s cat %q |\n' "${utt}" "${corpus}/${dset}/${utt}.wav"; done \
            < "data/${dset}/text" > "data/${dset}/wav.scp"
    fi
    awk '{ split($1, a, "_"); print $1, a[1] }' "data/${dset}/text" > "data/${dset}/utt2spk"
done
"""
RUN_SH = """#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")"
./asr.sh --lang en --nbpe 16 --train_set train --valid_set dev --test_sets "test" \\
    --asr_config conf/demo/train_asr_lrsms_tiny.yaml --inference_config conf/demo/decode_asr_tiny.yaml "$@"
"""


SETS = (("train", 8), ("dev", 4), ("test", 3))


def _words(rng):
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(2, 4))) for _ in range(2)]


def write_8khz_corpus(root: Path) -> Path:
    """train: 8 utterance files; dev and test: 4 and 3 utterances in one recording each, with a segments file. 8 kHz."""
    rng = random.Random(0)
    for dset, count in SETS:
        (root / dset).mkdir(parents=True)
        texts, segments, recording, t = [], [], [], 0.0
        for i in range(count):
            uttid, words = f"spk{i % 3}_{dset}{i:02d}", _words(rng)
            wave = _tone_utterance("".join(words), rng)[::2]  # 16 kHz tones (300-1140 Hz) at 8 kHz
            texts.append(f"{uttid} {' '.join(words)}\n")
            if dset == "train":
                soundfile.write(root / dset / f"{uttid}.wav", wave, 8000, subtype="PCM_16")
                continue
            gap = np.zeros(1600, dtype=np.float32)  # 0.2 s
            recording += [gap, wave]
            start = t + 0.2
            t = start + len(wave) / 8000
            segments.append(f"{uttid} {dset}_rec {start:.4f} {t:.4f}\n")
        (root / dset / "text").write_text("".join(texts))
        if segments:
            soundfile.write(root / dset / "rec.wav", np.concatenate(recording), 8000, subtype="PCM_16")
            (root / dset / "segments").write_text("".join(segments))
    return root


def make_recipe(root: Path, data_sh: str = DATA_SH) -> Path:
    """egs2/<corpus>/asr1 as docs/recipes.md's "Add a corpus" says — links to the template, run.sh, local/data.sh —
    in a copy of the checkout's recipe files (as the demo fixture runs)."""
    template = checkout_copy(root, REPO / "egs2" / "TEMPLATE" / "asr1")
    recipe = template.parents[1] / "heldout" / "asr1"
    (recipe / "local").mkdir(parents=True)
    for name in ("asr.sh", "cmd.sh"):
        (recipe / name).symlink_to(Path("../../TEMPLATE/asr1") / name)
    (recipe / "conf").symlink_to(Path("../../../conf"))
    for path, text in ((recipe / "run.sh", RUN_SH), (recipe / "local" / "data.sh", data_sh)):
        path.write_text(text)
        path.chmod(0o755)
    return recipe


def _run(recipe, *args, env=None):
    return subprocess.run(["./run.sh", "--ngpu", "0", "--nj", "2", "--inference_nj", "2", *args], cwd=recipe,
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.end_to_end
def test_own_corpus_with_commands_segments_and_8khz_audio_trains_and_scores(tmp_path):
    """At ESPnet's --fs 8k: the dump, training and decoding all at 8 kHz."""
    corpus = write_8khz_corpus(tmp_path / "corpus")
    recipe = make_recipe(tmp_path)
    result = _run(recipe, "--stop_stage", "13", "--local_data_opts", f"--corpus {corpus}", "--inference_nj", "1",
                  "--fs", "8k",
                  "--asr_args", "--max_epoch 1", "--inference_args", "--beam_size 2 --maxlenratio 0.3",
                  "--inference_asr_model", "valid.acc.best.pth")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"local/data.sh --corpus {corpus}" in result.stdout
    assert (recipe / "data" / "train" / "wav.scp").read_text().startswith("spk0_train00 cat ")
    raw = recipe / "dump" / "raw"
    for dset, count in SETS:
        scp = dict(line.split(maxsplit=1) for line in (raw / dset / "wav.scp").read_text().splitlines())
        lengths = dict(line.split() for line in (raw / dset / "utt2num_samples").read_text().splitlines())
        assert len(scp) == count and all(key.startswith("spk") for key in scp), dset  # dev, test: the segment ids
        for key, path in scp.items():
            info = soundfile.info(path)
            assert info.samplerate == 8000 and info.channels == 1 and info.frames == int(lengths[key]), (dset, key)
            assert 8000 * 0.6 < info.frames < 8000 * 1.4  # 4-8 letters of 0.16 s each
    assert (raw / "org" / "train" / "wav.scp").is_file() and not (raw / "org" / "test").exists()
    exp = recipe / "exp" / "asr_train_asr_lrsms_tiny_raw_en_bpe16_max_epoch1"
    # --fs reached training as ESPnet's --frontend_conf fs=8k (the config's other options kept); decoding read it back
    trained = yaml.safe_load((exp / "config.yaml").read_text())
    assert trained["frontend"] == "resnet1d" and trained["frontend_conf"]["fs"] == "8k"
    assert trained["frontend_conf"]["channels"] == [16, 32, 64, 128]
    assert trained_sampling_rate(exp / "config.yaml") == 8000
    decode = exp / "decode_asr_tiny_beam_size2_maxlenratio0.3_asr_model_valid.acc.best" / "test"
    result_txt = (decode / "score_wer" / "result.txt").read_text()
    match = re.search(r"\|\s*Sum/Avg\s*\|\s*(\d+)\s+(\d+)\s*\|\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)",
                      result_txt)
    assert match, result_txt
    assert int(match.group(1)) == 3 and int(match.group(2)) == 6  # 3 utterances of 2 words
    assert len((decode / "1best_recog" / "text").read_text().splitlines()) == 3  # every one decoded
    assert float(match.group(7)) >= 0.0  # the WER of a 1-epoch model: a number, not a good one


def test_local_data_sh_must_write_every_set(tmp_path):
    """Stage 1 runs local/data.sh with --local_data_opts, needs no --corpus, and names the sets it did not write."""
    corpus = write_8khz_corpus(tmp_path / "corpus")
    recipe = make_recipe(tmp_path)
    env = dict(os.environ, SETS="train dev")
    result = _run(recipe, "--stop_stage", "1", "--local_data_opts", f"--corpus {corpus}", env=env)
    assert result.returncode == 1
    assert "local/data.sh did not write data/test/wav.scp data/test/text" in result.stderr
    result = _run(recipe, "--stop_stage", "1", "--local_data_opts", "--no_such_option 1", env=env)
    assert result.returncode == 1 and "unknown option --no_such_option" in result.stderr
    assert "local/data.sh --no_such_option 1 failed (exit 1)" in result.stderr
    (recipe / "local" / "data.sh").chmod(0o644)
    result = _run(recipe, "--stop_stage", "1")
    assert result.returncode == 1 and "local/data.sh is not executable" in result.stderr
