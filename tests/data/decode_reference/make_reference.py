"""How the files of this folder were made (run once, with the package of commit 048961c: the decoder before its
rewrite as one loop, i.e. ``PYTHONPATH=<that commit's tree>`` from a folder outside the repository). tests/asr/test_decode_reference.py decodes the same
inputs with today's code and compares the outputs byte for byte.

    python tests/data/decode_reference/make_reference.py <experiment dir> <tone data dir>

<experiment dir>: the tiny demo config (conf/demo/train_asr_lrsms_tiny.yaml) trained on the tests' tone data
(tests/conftest.py's write_tone_dataset(root / "train", 16, seed=0) and its token list) through
tests/asr_test_data.py's train_command with "--max_epoch 12" and STEPS. The fusion LM is the tiny demo LM
(conf/lm/demo/train_lm_transformer_tiny.yaml at one block) with vanilla LoRA adapters, randomly initialised
(torch.manual_seed(0)) with non-zero adapter weights, so that loading it without its adapters changes the scores.
"""
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile
import torch
import yaml

HERE = Path(__file__).resolve().parent
UTTS = ("utt000", "utt001", "utt002", "utt003")
# (decode name, command-line options): joint CTC/attention with 3-best lists; LoRA-LM shallow fusion with 2-best
# lists, of the utterances of a key file ({keys}: utt001, short, utt003)
DECODES = {
    "asr": ["--beam_size", "4", "--ctc_weight", "0.3", "--penalty", "0.2", "--nbest", "3"],
    "asr_lora_lm": ["--beam_size", "3", "--ctc_weight", "0.3", "--lm_weight", "0.5", "--nbest", "2",
                    "--lm_train_config", "{model}/lm_config.yaml", "--lm_file", "{model}/lm.pth", "--key_file", "{keys}"],
}


def ship_model(exp: Path, tone: Path, model: Path) -> None:
    """config.yaml (paths of the training run left out), model.pth, the LoRA LM, and the audio."""
    model.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((exp / "config.yaml").read_text())
    for key in ("output_dir", "train_data_path_and_name_and_type", "valid_data_path_and_name_and_type",
                "train_shape_file", "valid_shape_file"):
        config[key] = None if key == "output_dir" else []
    (model / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    torch.save(torch.load(exp / "valid.acc.best.pth", map_location="cpu"), model / "model.pth")
    ship_lora_lm(config["token_list"], model)
    audio = HERE / "audio"
    audio.mkdir(exist_ok=True)
    for utt in UTTS:
        shutil.copy(tone / "train" / "wav" / f"{utt}.wav", audio / f"{utt}.wav")
    soundfile.write(audio / "short.wav", np.zeros(304, dtype=np.float32), 16000)  # 19 ms: TooShortUttError


def ship_lora_lm(token_list, model: Path) -> None:
    from espnet_lrsms.lm.task import LoRALMTask

    repo = HERE.parents[2]
    args = LoRALMTask.get_parser().parse_args([
        "--config", str(repo / "conf/lm/demo/train_lm_transformer_tiny.yaml"), "--token_list", "x",
        "--output_dir", "x"])
    args.token_list, args.output_dir = list(token_list), None
    args.lm_conf = dict(args.lm_conf, layer=1, unit=128)
    args.lora_conf = {"strategy": "vanilla", "rank": 2, "lora_alpha": 4}
    torch.manual_seed(0)
    lm = LoRALMTask.build_model(args)
    with torch.no_grad():
        for name, p in lm.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    (model / "lm_config.yaml").write_text(yaml.safe_dump(vars(args), sort_keys=False))
    torch.save(lm.state_dict(), model / "lm.pth")


def wav_scp(directory: Path) -> Path:
    """wav.scp of the shipped audio: the four utterances with the too-short one between them."""
    audio = HERE / "audio"
    keys = ["utt000", "utt001", "short", "utt002", "utt003"]
    scp = directory / "wav.scp"
    scp.write_text("".join(f"{k} {audio / (k + '.wav')}\n" for k in keys))
    (directory / "keys").write_text("".join(f"{k} {audio / (k + '.wav')}\n" for k in ("utt001", "short", "utt003")))
    return scp


def decode_command(name: str, scp: Path, output_dir: Path):
    model = HERE / "model"
    options = [o.format(model=model, keys=scp.parent / "keys") for o in DECODES[name]]
    return ["--batch_size", "1", "--ngpu", "0", "--data_path_and_name_and_type", f"{scp},speech,sound",
            "--asr_train_config", str(model / "config.yaml"), "--asr_model_file", str(model / "model.pth"),
            "--output_dir", str(output_dir), *options]


if __name__ == "__main__":
    from espnet_lrsms.bin.asr_inference import main

    ship_model(Path(sys.argv[1]), Path(sys.argv[2]), HERE / "model")
    scp = wav_scp(HERE)
    for name in DECODES:
        out = HERE / name
        shutil.rmtree(out, ignore_errors=True)
        assert main(decode_command(name, scp, out)) == 0
    scp.unlink()
    (HERE / "keys").unlink()
