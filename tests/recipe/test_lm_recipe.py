"""Recipe stages 6-9 (LM text, LM training, perplexity, LoRA adaptation) and 17 (rescoring + NPRR) through
run.sh, on the demo transcripts and n-best lists written in ESPnet's decode layout (the other stages are
test_recipes.py's)."""
import os
import re
import shutil
import subprocess

import pytest

from espnet_lrsms.text.nbest import read_references
from espnet_lrsms.lm.rescore import corpus_wer
from espnet_lrsms.recipe.tokenizer import train_tokenizer

from conftest import REPO, results_tables
from lm_test_data import demo_transcripts, noisy_nbest, write_data_dir, write_decode_dir

pytestmark = pytest.mark.end_to_end  # end to end: slow, deselect with -m "not end_to_end"

RECIPE = REPO / "egs2" / "librispeech" / "asr1"
ASR_EXP = "asr_train_asr_lrsms_tiny_raw_en_bpe30"
DECODE = "decode_asr_tiny_asr_model_valid.acc.best"
BASE_LM = "lm_train_lm_transformer_tiny_en_bpe30"
ARGS = [
    "--ngpu", "0", "--nbpe", "30", "--train_set", "train_clean_100", "--valid_set", "dev_clean",
    "--test_sets", "dev_clean test_clean", "--asr_config", "conf/demo/train_asr_lrsms_tiny.yaml",
    "--inference_config", "conf/demo/decode_asr_tiny.yaml", "--inference_asr_model", "valid.acc.best.pth",
    "--inference_nj", "2",  # the fused decode: two jobs on the 2 CI cores (asr.sh's default is 4)
    "--lm_config", "conf/lm/demo/train_lm_transformer_tiny.yaml", "--lora_config", "conf/lm/demo/lora_vanilla_tiny.yaml",
    "--lm_args", "--max_epoch 4 --use_matplotlib false", "--lora_args", "--max_epoch 2 --use_matplotlib false",
]


def run(work, *args, check=True):
    env = dict(os.environ, LIBRISPEECH=str(REPO / "demo" / "librispeech"))
    result = subprocess.run(
        ["./run.sh", *ARGS, "--datadir", str(work / "data"), "--expdir", str(work / "exp"), *args],
        cwd=RECIPE, env=env, capture_output=True, text=True,
    )
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def lm_stages(tmp_path_factory):
    work = tmp_path_factory.mktemp("lm_recipe")
    raw = work / "dump" / "raw"  # what stages 3-4 leave (the sets' text is all the LM stages read)
    for split in ("train_clean_100", "dev_clean", "test_clean"):
        write_data_dir(raw, split)
    train_tokenizer(raw / "train_clean_100" / "text", work / "data" / "en_token_list" / "bpe_unigram30", 30)  # stage 5
    for split in ("dev_clean", "test_clean"):  # stage 12's output, made noisy
        write_decode_dir(work / "exp" / ASR_EXP / DECODE / split, noisy_nbest(demo_transcripts(split)))
    return work, run(work, "--stage", "6", "--stop_stage", "9").stdout + run(work, "--stage", "17").stdout


def wer_row(results, decode, dataset):
    match = re.search(rf"^\|{re.escape(decode)}/{dataset}\|\d+\|\d+\|(?:[\d.]+\|){{4}}([\d.]+)\|", results, re.M)
    assert match, results
    return float(match.group(1))


def test_rescoring_rows_land_in_results_md(lm_stages):
    work, stdout = lm_stages
    exp = work / "exp" / ASR_EXP
    results = (exp / "RESULTS.md").read_text()
    assert results in stdout
    for lm in (BASE_LM, f"{BASE_LM}_lora_vanilla_tiny"):
        for dataset in ("dev_clean", "test_clean"):
            refs = {k: v.split() for k, v in demo_transcripts(dataset).items()}
            before = corpus_wer(refs, read_references(exp / DECODE / dataset / "1best_recog" / "text"))
            after = wer_row(results, f"{DECODE}_rescore_{lm}", dataset)
            print(f"{lm} {dataset}: WER {before:.1f} -> {after:.1f}")
            assert after < before  # the sound-alikes on top of every list are pushed down
        assert (exp / f"{DECODE}_rescore_{lm}" / "lm_weight").is_file()


def test_nprr_is_measured_on_the_test_set_only(lm_stages):
    work, stdout = lm_stages
    out = work / "exp" / ASR_EXP / f"{DECODE}_rescore_{BASE_LM}"
    text = (out / "test_clean" / "robustness.txt").read_text()
    assert re.search(r"NPRR = (n/a|[-+][\d.]+ %)\s+1-best PRR = (n/a|[-+][\d.]+ %)", text), text
    assert not (out / "dev_clean" / "robustness.txt").exists()  # the tuning set


def test_nprr_substitutes_are_homophones_within_the_lms_vocabulary(lm_stages):
    """Stage 17's default: homophones only, drawn from the words of the base LM's training text (here the 11
    digit words, none a homophone of another): only the lists' sound-alikes can change (WON -> ONE, TOO -> TWO)."""
    work, _ = lm_stages
    text = (work / "exp" / ASR_EXP / f"{DECODE}_rescore_{BASE_LM}" / "test_clean" / "robustness.txt").read_text()
    assert re.search(rf"substitution 0.3 \(homophones from 11 words of the training text of \S*{BASE_LM}/config.yaml\)", text), text
    words, substituted = (int(x) for x in re.search(r"(\d+) words, (\d+) substituted", text).groups())
    assert 0 < substituted < 0.3 * words / 3  # 240 words: 3 substituted (all of CMUdict: 41; and words one phone away: 76)


def test_lora_stage_reports_its_ranks(lm_stages):
    work, stdout = lm_stages
    assert re.search(r"LoRA strategy vanilla \(end, step \d+\): 12 adapted linears, ranks 12×r4, total rank 48", stdout)
    assert (work / "exp" / f"{BASE_LM}_lora_vanilla_tiny" / "lora_ranks.json").is_file()


def test_perplexity_stage_uses_espnets_lm_calc_perplexity(lm_stages):
    work, stdout = lm_stages
    for dataset in ("dev_clean", "test_clean"):
        ppl = float((work / "exp" / BASE_LM / f"perplexity_{dataset}" / "ppl").read_text())
        assert 1.0 < ppl < 30.0  # below the 30-piece vocabulary: the LM learned something
        assert f"PPL {dataset}: " in stdout
    assert (work / "exp" / BASE_LM / "run.sh").read_text().rstrip().endswith('--stage 7 "$@"; exit $?')


def test_rerunning_stage_17_is_safe(lm_stages):
    work, _ = lm_stages
    results = work / "exp" / ASR_EXP / "RESULTS.md"
    before = results_tables(results.read_text())
    run(work, "--stage", "17", "--lm_robustness", "false", "--lora_config", "")  # the base LM's rows again
    assert results_tables(results.read_text()) == before
    assert not list((work / "exp" / ASR_EXP).glob("*.tmp"))


def test_an_undecoded_tuning_set_is_named(lm_stages):
    work, _ = lm_stages
    result = run(work, "--stage", "17", "--lm_tune_set", "dev_other", check=False)
    assert result.returncode != 0
    assert "tunes the LM weight on dev_other" in result.stderr and "--test_sets" in result.stderr


def test_shallow_fusion_decodes_into_its_own_directory(lm_stages, librispeech_demo):
    """Stage 12 with --use_lm true (ESPnet's shallow fusion) with the LM of stage 7 and the demo's ASR model of
    the session fixture (nothing trained here), scored by stage 13 next to the plain decodes."""
    work, _ = lm_stages
    demo_work, _ = librispeech_demo
    tokens = "en_token_list/bpe_unigram30/tokens.txt"
    assert (work / "data" / tokens).read_text() == (demo_work / "data" / tokens).read_text()  # one vocabulary
    for name in ("config.yaml", "valid.acc.best.pth"):
        shutil.copy(demo_work / "exp" / ASR_EXP / name, work / "exp" / ASR_EXP / name)
    shutil.copy(demo_work / "dump" / "raw" / "test_clean" / "wav.scp", work / "dump" / "raw" / "test_clean" / "wav.scp")
    fused = ["--stage", "12", "--stop_stage", "13", "--use_lm", "true", "--test_sets", "test_clean"]
    plain = work / "exp" / ASR_EXP / DECODE / "test_clean" / "1best_recog" / "text"
    plain_before = plain.read_text()

    result = run(work, *fused, check=False)  # decode_asr_tiny.yaml has lm_weight 0.0
    assert result.returncode != 0 and "--use_lm true needs a non-zero lm_weight" in result.stderr, result.stderr
    result = run(work, *fused, "--inference_config", "conf/demo/decode_asr_tiny_lm.yaml", "--inference_lm", "x.pth",
                 check=False)
    assert result.returncode != 0 and "x.pth" in result.stderr, result.stderr
    result = run(work, *fused, "--lm_config", "", check=False)
    assert result.returncode != 0 and "--use_lm true needs an LM to fuse" in result.stderr, result.stderr

    stdout = run(work, *fused, "--inference_config", "conf/demo/decode_asr_tiny_lm.yaml").stdout
    tag = f"decode_asr_tiny_lm_lm_{BASE_LM}_valid.loss.best_asr_model_valid.acc.best"  # ESPnet's _lm_<exp>_<model>
    assert f"shallow fusion with {work}/exp/{BASE_LM}/valid.loss.best.pth (lm_weight 0.3)" in stdout
    decode = work / "exp" / ASR_EXP / tag / "test_clean"
    for metric in ("wer", "cer", "ter"):
        assert "Sum/Avg" in (decode / f"score_{metric}" / "result.txt").read_text()
    results = (work / "exp" / ASR_EXP / "RESULTS.md").read_text()
    fused_wer = wer_row(results, tag, "test_clean")
    print(f"test_clean with shallow fusion (lm_weight 0.3): WER {fused_wer}")
    assert plain.read_text() == plain_before  # the plain decode is left as it was
