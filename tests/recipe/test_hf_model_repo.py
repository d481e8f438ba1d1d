"""Stage 15: the Hugging Face model repository made from a real ESPnet pack (nothing is pushed)."""
import subprocess
import sys
import zipfile

import torch
import yaml

from espnet_lrsms.bin.hf_model_repo import main


def _pack(tmp_path):
    exp = tmp_path / "exp" / "asr_demo"
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text(yaml.safe_dump({"encoder": "lowrank_conformer", "token_list": ["<blank>", "a"]}))
    torch.save({"w": torch.zeros(2)}, exp / "valid.acc.ave.pth")
    (exp / "RESULTS.md").write_text("# RESULTS\n## Environments\n- date: `today`\n\n### WER\n\n|dataset|Snt|\n|---|---|\n|decode/test|4|\n")
    pack = exp / "asr_demo_valid.acc.ave.zip"
    exp_rel = "exp/asr_demo"  # as the recipe runs it: from the recipe directory, relative paths
    subprocess.run([sys.executable, "-m", "espnet2.bin.pack", "asr", "--asr_train_config", f"{exp_rel}/config.yaml",
                    "--asr_model_file", f"{exp_rel}/valid.acc.ave.pth", "--option", f"{exp_rel}/RESULTS.md",
                    "--outpath", str(pack)], check=True, capture_output=True, cwd=tmp_path)
    return exp, pack


def test_model_repo_holds_the_pack_and_a_model_card(tmp_path):
    exp, pack = _pack(tmp_path)
    out = exp / "hf_repo"
    assert main(["--pack", str(pack), "--out_dir", str(out), "--hf_repo", "someone/lrsms-demo"]) == 0
    with zipfile.ZipFile(pack) as archive:
        assert all((out / name).is_file() for name in archive.namelist())
    card = (out / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["library_name"] == "espnet" and "espnet_lrsms" in front["tags"] and front["datasets"] == ["librispeech"]
    assert "### `someone/lrsms-demo`" in card
    assert "--asr_train_config exp/asr_demo/config.yaml" in card and "--asr_model_file exp/asr_demo/valid.acc.ave.pth" in card
    assert "|decode/test|4|" in card and "encoder: lowrank_conformer" in card
    assert "pip install \"espnet_lrsms==" in card


def test_push_needs_a_repo_id_and_bad_packs_are_named(tmp_path, capsys, caplog):
    exp, pack = _pack(tmp_path)
    try:
        main(["--repo_dir", str(exp), "--push"])
    except SystemExit as stop:
        assert stop.code == 2
    assert "--push needs --hf_repo and --repo_dir" in capsys.readouterr().err
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("meta.yaml", yaml.safe_dump({"files": {}, "yaml_files": {"asr_train_config": "c.yaml"}}))
        archive.writestr("../outside.txt", "x")
    assert main(["--pack", str(evil), "--out_dir", str(tmp_path / "repo")]) == 1
    assert "'../outside.txt' points outside the archive" in caplog.text
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "repo").exists()
    (tmp_path / "plain.zip").write_bytes(b"not a zip")
    assert main(["--pack", str(tmp_path / "plain.zip"), "--out_dir", str(tmp_path / "repo")]) == 1
    assert "plain.zip: not a zip archive" in caplog.text


def test_one_call_writes_the_repo_and_a_fused_lm_is_in_the_card(tmp_path, capsys):
    """Stage 15 is one call: --pack/--out_dir write the repository (--push with --hf_repo would upload it); a pack
    with ESPnet's lm_train_config/lm_file (stage 14 with --use_lm true) gets them in the model card's command."""
    exp, _ = _pack(tmp_path)
    lm = tmp_path / "exp" / "lm_demo"
    lm.mkdir()
    (lm / "config.yaml").write_text(yaml.safe_dump({"lm": "transformer"}))
    torch.save({"v": torch.ones(2)}, lm / "valid.loss.best.pth")
    pack = exp / "asr_demo_lm.zip"
    subprocess.run([sys.executable, "-m", "espnet2.bin.pack", "asr", "--asr_train_config", "exp/asr_demo/config.yaml",
                    "--asr_model_file", "exp/asr_demo/valid.acc.ave.pth", "--lm_train_config", "exp/lm_demo/config.yaml",
                    "--lm_file", "exp/lm_demo/valid.loss.best.pth", "--outpath", str(pack)],
                   check=True, capture_output=True, cwd=tmp_path)
    try:
        main(["--pack", str(pack), "--out_dir", str(exp / "repo"), "--push"])
    except SystemExit as stop:
        assert stop.code == 2
    assert "--push needs --hf_repo" in capsys.readouterr().err and not (exp / "repo").exists()
    assert main(["--pack", str(pack), "--out_dir", str(exp / "repo")]) == 0
    card = (exp / "repo" / "README.md").read_text()
    assert "--lm_train_config exp/lm_demo/config.yaml --lm_file exp/lm_demo/valid.loss.best.pth" in card
    assert (exp / "repo" / "exp" / "lm_demo" / "valid.loss.best.pth").is_file()
