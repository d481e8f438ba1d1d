"""Stage 10 collects ESPnet's feature statistics for a ``normalize: global_mvn`` config, stage 11 trains with them."""
import shutil
import subprocess

import numpy as np
import pytest
import soundfile
import torch
import yaml

from espnet_lrsms.bin import feats_stats
from espnet_lrsms.fileio import load_weights_only, read_kaldi_table
from espnet_lrsms.recipe.feats_stats import (
    ESPNET_DEFAULT_NORMALIZE, FeatsStatsError, normalize_plan, read_feats_stats, split_stats_keys,
)

from conftest import DEMO_ARGS, LIBRI_RECIPE, REPO, stage_11_inputs, run_recipe

FBANK = REPO / "conf" / "demo" / "train_asr_lrsms_tiny_fbank.yaml"


def test_espnets_default_normalize_is_the_one_assumed():
    from espnet2.tasks.asr import ASRTask

    assert ASRTask.get_parser().get_default("normalize") == ESPNET_DEFAULT_NORMALIZE


@pytest.mark.parametrize(
    "config, asr_args, words",
    [
        (FBANK, "", "global_mvn recipe"),
        (FBANK, "--max_epoch 1 --normalize_conf stats_file=my.npz", "global_mvn given"),
        (FBANK, "--normalize=utterance_mvn", "utterance_mvn -"),
        (FBANK, "--normalize none", "none -"),
        (REPO / "conf" / "demo" / "train_asr_lrsms_tiny.yaml", "", "none -"),  # normalize: null
        (REPO / "conf" / "asr" / "train_asr_conformer_lrsms.yaml", "--normalize global_mvn", "global_mvn recipe"),
        (None, "", "utterance_mvn -"),  # no normalize key: ESPnet's default
        ("given", "", "global_mvn given"),  # the config names its own stats_file
    ],
)
def test_the_plan_reads_the_config_and_the_asr_args(tmp_path, capsys, config, asr_args, words):
    if config is None:
        config = tmp_path / "plain.yaml"
        config.write_text("frontend: default\n")
    elif config == "given":
        config = tmp_path / "given.yaml"
        config.write_text("normalize: global_mvn\nnormalize_conf:\n    stats_file: /data/stats.npz\n")
    assert feats_stats.main(["plan", "--config", str(config), f"--asr_args={asr_args}"]) == 0
    assert capsys.readouterr().out == words + "\n"


def test_bad_plan_inputs_are_named(tmp_path):
    with pytest.raises(FeatsStatsError, match="nothing.yaml: cannot read the training config"):
        normalize_plan(tmp_path / "nothing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(FeatsStatsError, match="list.yaml: a training config is a mapping"):
        normalize_plan(tmp_path / "list.yaml")
    with pytest.raises(FeatsStatsError, match="--normalize has no value"):
        normalize_plan(FBANK, "--max_epoch 1 --normalize")


def test_split_gives_both_sets_the_same_jobs(tmp_path):
    (tmp_path / "train.scp").write_text("".join(f"t{i} a.wav\n" for i in range(5)))
    (tmp_path / "valid.scp").write_text("v0 a.wav\nv1 b.wav\n")
    assert split_stats_keys(tmp_path / "train.scp", tmp_path / "valid.scp", 4, tmp_path / "log") == 2
    assert (tmp_path / "log" / "train" / "keys.1.scp").read_text() == "t0\nt2\nt4\n"
    assert (tmp_path / "log" / "valid" / "keys.2.scp").read_text() == "v1\n"
    (tmp_path / "empty.scp").write_text("")
    with pytest.raises(FeatsStatsError, match="empty.scp is empty: no utterances"):
        split_stats_keys(tmp_path / "train.scp", tmp_path / "empty.scp", 4, tmp_path / "log2")


def test_training_with_global_mvn_needs_stage_10s_statistics(tmp_path):
    """Stage 11 stops before training, naming the missing file and the stage that makes it."""
    data, stats = stage_11_inputs(tmp_path)
    result = subprocess.run(
        ["./run.sh", *DEMO_ARGS, "--stage", "11", "--stop_stage", "11", "--datadir", str(data),
         "--expdir", str(tmp_path / "exp"), "--asr_config", "conf/demo/train_asr_lrsms_tiny_fbank.yaml"],
        cwd=LIBRI_RECIPE, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"Stage 11 needs {stats}/train/feats_stats.npz (made by stage 10: " in result.stderr
    assert "train_asr_lrsms_tiny_fbank.yaml normalizes with global_mvn), which is missing or empty" in result.stderr
    assert not list((tmp_path / "exp").glob("asr_train_*"))  # no training started


def _frontend_stats(wav_scp, frontend_conf):
    """Count, mean and variance of ESPnet's DefaultFrontend features, utterance by utterance."""
    from espnet2.asr.frontend.default import DefaultFrontend

    frontend = DefaultFrontend(**frontend_conf).eval()
    frames = []
    with torch.no_grad():
        for path in read_kaldi_table(wav_scp).values():
            wave, _ = soundfile.read(path, dtype="float32")
            feats, lengths = frontend(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
            frames.append(feats[0, : lengths[0]].double().numpy())
    frames = np.concatenate(frames)
    return len(frames), frames.mean(0), frames.var(0)


def _tokenizer(out_dir, text, nbpe):
    """Stage 5's files without its ESPnet start-up (seconds here): bpe.model and ESPnet's token list."""
    import sentencepiece

    out_dir.mkdir(parents=True)
    (out_dir / "sentences.txt").write_text("".join(v + "\n" for v in read_kaldi_table(text).values()))
    sentencepiece.SentencePieceTrainer.train(
        input=str(out_dir / "sentences.txt"), model_prefix=str(out_dir / "bpe"), vocab_size=nbpe, model_type="unigram",
        hard_vocab_limit=False, minloglevel=2,
    )
    model = sentencepiece.SentencePieceProcessor(model_file=str(out_dir / "bpe.model"))
    pieces = [model.id_to_piece(i) for i in range(model.get_piece_size()) if not model.is_control(i) and not model.is_unknown(i)]
    (out_dir / "tokens.txt").write_text("\n".join(["<blank>", "<unk>", *pieces, "<sos/eos>"]) + "\n")


@pytest.mark.end_to_end
def test_stage_10_collects_espnets_statistics_and_stage_11_trains_with_them(tmp_path, tone_data):
    """The tone data as training and validation set: stages 3-11 with a tiny fbank + global_mvn config."""
    for dset in ("train_clean_100", "dev_clean"):
        target = tmp_path / "data" / dset
        target.mkdir(parents=True)
        for name in ("wav.scp", "text"):
            shutil.copy(tone_data / "train" / name, target / name)
        keys = list(read_kaldi_table(target / "wav.scp"))
        (target / "utt2spk").write_text("".join(f"{k} {k}\n" for k in keys))
    args = ["--nbpe", "20", "--train_set", "train_clean_100", "--valid_set", "dev_clean", "--test_sets", "dev_clean",
            "--asr_config", "conf/demo/train_asr_lrsms_tiny_fbank.yaml", "--asr_args", "--max_epoch 1"]
    corpus = REPO / "demo" / "librispeech"
    run_recipe(LIBRI_RECIPE, "LIBRISPEECH", corpus, tmp_path, "--stage", "3", "--stop_stage", "4", *args)
    _tokenizer(tmp_path / "data" / "en_token_list" / "bpe_unigram20", tone_data / "train" / "text", 20)
    stdout = run_recipe(LIBRI_RECIPE, "LIBRISPEECH", corpus, tmp_path, "--stage", "10", "--stop_stage", "11", *args)
    assert "normalizes with global_mvn: feature statistics of" in stdout and "2 job(s)" in stdout
    stats_file = tmp_path / "exp" / "asr_stats_raw_en_bpe20" / "train" / "feats_stats.npz"
    count, mean, var = read_feats_stats(stats_file)
    config = yaml.safe_load(FBANK.read_text())
    train_scp = tmp_path / "dump" / "raw" / "train_clean_100" / "wav.scp"
    ref_count, ref_mean, ref_var = _frontend_stats(train_scp, config["frontend_conf"])
    assert len(read_kaldi_table(train_scp)) == 16
    assert count == ref_count and mean.shape == (20,)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(var, ref_var, rtol=1e-3, atol=1e-4)
    # stage 11 trained one epoch, normalising with exactly these statistics
    (exp,) = (tmp_path / "exp").glob("asr_train_asr_lrsms_tiny_fbank_*")
    trained = yaml.safe_load((exp / "config.yaml").read_text())
    assert trained["normalize"] == "global_mvn" and trained["normalize_conf"]["stats_file"] == str(stats_file)
    weights = load_weights_only(exp / "1epoch.pth")
    np.testing.assert_allclose(weights["normalize.mean"].numpy(), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(weights["normalize.std"].numpy(), np.sqrt(var), rtol=1e-4, atol=1e-4)
