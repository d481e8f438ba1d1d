"""Every option of ESPnet 202511's egs2/TEMPLATE/asr1/asr.sh is accepted by ours (with ESPnet's meaning) or refused
with the reason; the ones implemented here do what ESPnet's do (--skip_stages, --asr_exp, --lm_exp, packing and the
Hugging Face stage at ESPnet's numbers, --eval_valid_set, --local_score_opts, --bpe_train_text). No training; the
two tests that run ESPnet's pack and SentencePiece are marked recipe (slower).
"""
import os
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
import yaml

from espnet_lrsms.scoring.results import read_sum_avg

from conftest import REPO

RECIPE = REPO / "egs2" / "librispeech" / "asr1"
ASR_SH = REPO / "egs2" / "TEMPLATE" / "asr1" / "asr.sh"
TINY = "conf/demo/train_asr_lrsms_tiny.yaml"

# ESPnet 202511's asr.sh options and their defaults: the variables above its help message. Read from ESPnet's
# egs2/TEMPLATE/asr1/asr.sh (github.com/espnet/espnet, the copy stored at commit f48416ba), with the options that
# ESPnet's asr.sh gained since as a 2025 copy of it shows them (skip_stages, skip_packing in place of skip_upload,
# eval_valid_set, use_lightning, post_process_local_data_opts, auxiliary_data_tags, multi_columns_*_wav_scp,
# hugging_face_model_name_or_path, use_*prompt, sot_asr, hyp_cleaner). train_cmd, cuda_cmd and decode_cmd come from
# ESPnet's cmd.sh and are options too.
ESPNET_202511_OPTIONS = {
    "stage": 1, "stop_stage": 10000, "skip_stages": "", "skip_data_prep": False, "skip_train": False,
    "skip_eval": False, "skip_packing": True, "skip_upload_hf": True, "eval_valid_set": False, "ngpu": 1,
    "num_nodes": 1, "nj": 32, "inference_nj": 32, "gpu_inference": False, "dumpdir": "dump", "expdir": "exp",
    "python": "python3", "use_lightning": False,
    "local_data_opts": "", "post_process_local_data_opts": "", "auxiliary_data_tags": "",
    "speed_perturb_factors": "",
    "feats_type": "raw", "audio_format": "flac", "multi_columns_input_wav_scp": False,
    "multi_columns_output_wav_scp": False, "fs": "16k", "min_wav_duration": 0.1, "max_wav_duration": 20,
    "token_type": "bpe", "nbpe": 30, "bpemode": "unigram", "oov": "<unk>", "blank": "<blank>",
    "sos_eos": "<sos/eos>", "bpe_input_sentence_size": 100000000, "bpe_nlsyms": "", "bpe_char_cover": 1.0,
    "hugging_face_model_name_or_path": "",
    "use_ngram": False, "ngram_exp": "", "ngram_num": 3,
    "use_lm": True, "lm_tag": "", "lm_exp": "", "lm_stats_dir": "", "lm_config": "", "lm_args": "",
    "use_word_lm": False, "num_splits_lm": 1, "word_vocab_size": 10000, "use_prompt": False,
    "use_lang_prompt": False, "use_nlp_prompt": False,
    "asr_task": "asr", "asr_tag": "", "asr_exp": "", "asr_stats_dir": "", "asr_config": "", "asr_args": "",
    "pretrained_model": "", "ignore_init_mismatch": False, "feats_normalize": "global_mvn", "num_splits_asr": 1,
    "num_ref": 1, "num_inf": "", "sot_asr": False,
    "hf_repo": "",
    "use_k2": False, "k2_ctc_decoding": True, "use_nbest_rescoring": True, "num_paths": 1000,
    "nll_batch_size": 100, "k2_config": "./conf/decode_asr_transformer_with_k2.yaml", "use_streaming": False,
    "use_maskctc": False, "batch_size": 1, "inference_tag": "", "inference_config": "", "inference_args": "",
    "inference_lm": "valid.loss.ave.pth", "inference_ngram": "3gram.bin", "inference_asr_model": "valid.acc.ave.pth",
    "download_model": "",
    "train_set": "", "valid_set": "", "test_sets": "", "bpe_train_text": "", "lm_train_text": "", "lm_dev_text": "",
    "lm_test_text": "", "nlsyms_txt": "none", "cleaner": "none", "hyp_cleaner": "none", "g2p": "none",
    "lang": "noinfo", "score_opts": "", "local_score_opts": "", "asr_speech_fold_length": 800,
    "asr_text_fold_length": 150, "lm_fold_length": 150,
    "train_cmd": "run.pl", "cuda_cmd": "run.pl", "decode_cmd": "run.pl",
}
NOTHING_RUNS = ["--stage", "99", "--stop_stage", "99"]  # options parsed and checked, no stage run


def _probe(name, default):
    """A value other than ESPnet's default: what a user of ESPnet might pass."""
    if name == "stage":
        return "100"  # still nothing to run
    if name == "stop_stage":
        return "0"
    if isinstance(default, bool):
        return str(not default).lower()
    if isinstance(default, (int, float)):
        return str(default * 2)
    return {"token_type": "char", "feats_type": "fbank_pitch", "audio_format": "wav", "fs": "8k",
            "feats_normalize": "utterance_mvn", "asr_task": "asr_transducer", "score_opts": "-s"}.get(name, "x")


def _run_sh(tmp_path, *args, timeout=60):
    return subprocess.run(
        ["./run.sh", "--expdir", str(tmp_path / "exp"), "--datadir", str(tmp_path / "data"), "--nbpe", "30",
         "--asr_config", TINY, *args],
        cwd=RECIPE, env={**os.environ, "LIBRISPEECH": str(REPO / "demo" / "librispeech")},
        capture_output=True, text=True, timeout=timeout,
    )


def test_every_espnet_option_is_accepted_or_refused_with_a_reason(tmp_path):
    """Another value than ESPnet's default: accepted, or an error naming the option (never "unknown option")."""
    def probe(item):
        name, default = item
        value = _probe(name, default)
        result = _run_sh(tmp_path / name, *NOTHING_RUNS, f"--{name}", value)
        return name, value, result.returncode, result.stderr.strip().splitlines()

    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(probe, ESPNET_202511_OPTIONS.items()))
    unknown = [(name, value) for name, value, _, err in runs if any("unknown option" in line for line in err)]
    assert not unknown
    unexplained = [(name, value, err) for name, value, rc, err in runs
                   if rc != 0 and not any(f"--{name}" in line for line in err)]
    assert not unexplained
    print("refused with a reason:", sorted(name for name, _, rc, _ in runs if rc != 0))


def test_espnets_defaults_of_the_options_added_here_are_accepted(tmp_path):
    """What the brief names, at ESPnet's defaults, in one run: accepted (rc 0)."""
    args = []
    for name in ("bpe_train_text", "pretrained_model", "ignore_init_mismatch", "local_score_opts", "score_opts",
                 "batch_size", "skip_stages", "eval_valid_set", "asr_exp", "lm_exp", "download_model",
                 "num_splits_asr", "skip_packing", "skip_upload_hf", "lm_stats_dir", "lm_dev_text", "lm_test_text",
                 "asr_speech_fold_length", "asr_text_fold_length", "lm_fold_length"):
        default = ESPNET_202511_OPTIONS[name]
        args += [f"--{name}", str(default).lower() if isinstance(default, bool) else str(default)]
    result = _run_sh(tmp_path, *NOTHING_RUNS, *args)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "option, value, reason",
    [
        ("download_model", "espnet/some_model", "nothing is downloaded here: decode a model you have with"),
        ("num_splits_asr", "4", "ESPnet's split-scp training for huge corpora is not implemented here"),
        ("batch_size", "8", "ESPnet's asr_inference decodes one utterance at a time"),
        ("score_opts", "-e utf-8 -c NOASCII", "it takes only \"-e utf-8\""),
        ("use_k2", "true", "k2 decoding is not supported"),
        ("use_ngram", "true", "there is no n-gram LM (no KenLM)"),
        ("skip_stages", "5 ten", "--skip_stages takes stage numbers separated by spaces"),
        ("eval_valid_set", "yes", "--eval_valid_set takes true or false, got 'yes'"),
    ],
)
def test_refusals_name_the_option_the_value_and_why(tmp_path, option, value, reason):
    result = _run_sh(tmp_path, *NOTHING_RUNS, f"--{option}", value)
    assert result.returncode == 1
    assert reason in result.stderr and f"--{option}" in result.stderr
    assert not list(tmp_path.iterdir())


def test_help_lists_the_espnet_options(tmp_path):
    text = _run_sh(tmp_path, "--help").stdout
    for name in ("--skip_stages", "--eval_valid_set", "--asr_exp", "--lm_exp", "--pretrained_model", "--batch_size",
                 "--score_opts", "--local_score_opts", "--bpe_train_text", "--download_model", "--num_splits_asr",
                 "--use_k2"):
        assert name in text, name


def test_skip_stages_leaves_out_those_stages_and_says_so(tmp_path):
    result = _run_sh(tmp_path, "--stage", "5", "--stop_stage", "10", "--skip_stages", "10 5 6 7 8 9 09")
    assert result.returncode == 0, result.stderr
    for n in range(5, 11):
        assert f'Stage {n} skipped (--skip_stages "5 6 7 8 9 10")' in result.stdout
    assert not list(tmp_path.iterdir())  # stage 5 would have needed the training text: it never ran


def test_skip_train_also_leaves_out_the_training_data_stages_as_espnet(tmp_path):
    result = _run_sh(tmp_path, "--stage", "2", "--stop_stage", "5", "--skip_train", "true", "--skip_stages", "3")
    assert result.returncode == 0, result.stderr
    for n in (2, 4, 5):
        assert f"Stage {n} skipped (--skip_train true)" in result.stdout


def test_packing_and_upload_are_off_by_default_and_at_espnets_numbers(tmp_path):
    result = _run_sh(tmp_path, "--stage", "14", "--stop_stage", "16")
    assert result.returncode == 0, result.stderr
    assert "Stage 14 skipped (--skip_packing true)" in result.stdout
    assert "Stage 15 skipped (--skip_upload_hf true)" in result.stdout
    assert "Stage 16" not in result.stdout  # ESPnet 202511 uploads in stage 15
    result = _run_sh(tmp_path, "--stage", "15", "--stop_stage", "15", "--skip_upload_hf", "false",
                     "--asr_exp", str(tmp_path / "my exp"))
    assert result.returncode == 1
    assert (f"Stage 15 needs {tmp_path}/my exp/my exp_valid.acc.ave.zip (made by stage 14, which runs with"
            " --skip_packing false)") in result.stderr


def test_asr_exp_and_lm_exp_name_the_directories(tmp_path):
    exp = tmp_path / "elsewhere" / "asr"
    result = _run_sh(tmp_path, "--stage", "12", "--stop_stage", "12", "--asr_exp", str(exp), "--asr_tag", "ignored")
    assert result.returncode == 1
    assert f"Stage 12 needs {exp}/config.yaml (made by stage 11" in result.stderr
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text("x: 1\n")
    (exp / "valid.acc.ave.pth").write_bytes(b"x")
    lm = tmp_path / "my_lm"
    result = _run_sh(tmp_path, "--stage", "12", "--stop_stage", "12", "--asr_exp", str(exp),
                     "--use_lm", "true", "--lm_exp", str(lm))
    assert result.returncode == 1
    assert f"Stage 12 needs {lm}/config.yaml (for --use_lm true" in result.stderr


def _fake_exp(root):
    """What stages 5-13 leave for packing: stand-in files (pack copies them; nothing loads them here)."""
    exp = root / "exp" / "asr_tiny"
    (exp / "images").mkdir(parents=True)
    (exp / "config.yaml").write_text(yaml.safe_dump({"encoder": "lowrank_conformer", "token_list": ["<blank>", "a"]}))
    torch.save({"w": torch.zeros(2)}, exp / "valid.acc.ave.pth")
    (exp / "RESULTS.md").write_text("# RESULTS\n\n|dataset|Snt|\n|---|---|\n|decode/test|4|\n")
    (exp / "images" / "loss.png").write_bytes(b"png")
    lm = root / "exp" / "lm_tiny"
    (lm / "perplexity_test_clean").mkdir(parents=True)
    (lm / "config.yaml").write_text(yaml.safe_dump({"lm": "transformer"}))
    torch.save({"v": torch.ones(2)}, lm / "valid.loss.best.pth")
    (lm / "perplexity_test_clean" / "ppl").write_text("42.0\n")
    bpe = root / "data" / "en_token_list" / "bpe_unigram30"
    bpe.mkdir(parents=True)
    (bpe / "bpe.model").write_bytes(b"spm")
    return exp, lm


@pytest.mark.end_to_end  # seconds to a minute: ESPnet's pack imports its tasks
def test_pack_has_espnets_name_images_and_the_fused_lm_and_stage_15_writes_the_repo(tmp_path):
    exp, lm = _fake_exp(tmp_path)
    result = _run_sh(tmp_path, "--stage", "14", "--stop_stage", "15", "--skip_packing", "false",
                     "--skip_upload_hf", "false", "--asr_exp", str(exp), "--use_lm", "true",
                     "--inference_lm_exp", str(lm), timeout=600)  # ESPnet's imports: the only slow part
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    pack = exp / "asr_tiny_valid.acc.ave.zip"
    assert f"-> {pack}" in result.stdout
    with zipfile.ZipFile(pack) as archive:
        names = set(archive.namelist())
        meta = yaml.safe_load(archive.read("meta.yaml"))
    assert any(n.endswith("asr_tiny/images/loss.png") for n in names), names  # ESPnet packs the training curves
    assert any(n.endswith("lm_tiny/perplexity_test_clean/ppl") for n in names), names
    assert meta["files"]["lm_file"].endswith("lm_tiny/valid.loss.best.pth")
    assert meta["yaml_files"]["lm_train_config"].endswith("lm_tiny/config.yaml")
    card = (exp / "hf_repo" / "README.md").read_text()
    assert "--lm_train_config" in card and "lm_tiny/valid.loss.best.pth" in card
    assert "Stage 15: nothing uploaded (no --hf_repo)" in result.stdout
    assert not list(exp.glob(".packing_*"))


def test_eval_valid_set_score_opts_and_local_score_sh(tmp_path):
    """Stage 13 scores the validation set too (--eval_valid_set), takes sclite's -e utf-8, and runs the recipe's
    local/score.sh with --local_score_opts and <asr_exp> afterwards, as ESPnet's."""
    dump, exp = tmp_path / "dump" / "raw", tmp_path / "exp" / "asr_x"
    decode = exp / "decode_x"
    texts = {"dev": ["u1 a b c", "u2 b c"], "test": ["u3 a a", "u4 c"]}
    hyps = {"dev": ["u1 a b c", "u2 b b"], "test": ["u3 a", "u4 c"]}
    for dset in texts:
        (dump / dset).mkdir(parents=True)
        (dump / dset / "text").write_text("\n".join(texts[dset]) + "\n")
        (dump / dset / "utt2spk").write_text("".join(f"{line.split()[0]} s\n" for line in texts[dset]))
        (decode / dset / "1best_recog").mkdir(parents=True)
        (decode / dset / "1best_recog" / "text").write_text("\n".join(hyps[dset]) + "\n")
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "score.sh").write_text('#!/usr/bin/env bash\necho "$@" > local_score_args\n')
    (tmp_path / "local" / "score.sh").chmod(0o755)
    result = subprocess.run(
        ["bash", str(ASR_SH), "--train_set", "train",
         "--valid_set", "dev", "--test_sets", "test dev", "--asr_config", str(REPO / TINY), "--token_type", "char",
         "--datadir", str(tmp_path / "data"), "--dumpdir", str(tmp_path / "dump"), "--asr_exp", str(exp),
         "--inference_tag", "decode_x", "--stage", "13", "--stop_stage", "13", "--eval_valid_set", "true",
         "--score_opts", "-e utf-8",
         "--local_score_opts", "--flag 1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (tmp_path / "local_score_args").read_text() == f"--flag 1 {exp}\n"
    # dev: 5 words, "c" read as "b" (1 substitution); test: 3 words, one "a" missing (1 deletion)
    assert read_sum_avg(decode / "dev" / "score_wer" / "result.txt") == (2, 5, [80.0, 20.0, 0.0, 0.0, 20.0, 50.0])
    assert read_sum_avg(decode / "test" / "score_wer" / "result.txt") == (2, 3, [66.7, 0.0, 33.3, 0.0, 33.3, 50.0])
    results = (exp / "RESULTS.md").read_text()
    assert "|decode_x/dev|2|5|" in results and "|decode_x/test|2|3|" in results
    assert result.stdout.count(f"Stage 13: scoring {decode}/dev") == 1  # once, though --test_sets names it too


@pytest.mark.end_to_end  # seconds to a minute: SentencePiece and ESPnet's tokenize_text
def test_bpe_train_text_is_what_sentencepiece_learns_from(tmp_path):
    """Stage 5 with --bpe_train_text: no training set is prepared at all, and the pieces are that text's."""
    text = tmp_path / "bpe text"
    text.write_text("".join(f"u{i} zebra quartz jukebox\n" for i in range(20)))
    result = _run_sh(tmp_path, "--stage", "5", "--stop_stage", "5", "--bpe_train_text", str(text), timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"on {text} ->" in result.stdout
    tokens = (tmp_path / "data" / "en_token_list" / "bpe_unigram30" / "tokens.txt").read_text().split()
    assert tokens[0] == "<blank>" and tokens[-1] == "<sos/eos>"
    assert set("zebraquartzjukebox") <= set("".join(tokens))  # every letter of that text is in a piece
    missing = _run_sh(tmp_path / "m", "--stage", "5", "--stop_stage", "5", "--bpe_train_text", str(tmp_path / "none"))
    assert missing.returncode == 1 and f"Stage 5 needs {tmp_path}/none (--bpe_train_text)" in missing.stderr
