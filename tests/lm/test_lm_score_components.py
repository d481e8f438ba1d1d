"""espnet_lrsms.bin.asr_inference writes each n-best hypothesis' per-scorer scores next to ESPnet's total."""
import json

import pytest
import torch

from espnet_lrsms.text.nbest import read_nbest, parse_score

from asr_test_data import train_command


@pytest.fixture(scope="module")
def untrained_model(tone_data, tmp_path_factory):
    """config.yaml from ESPnet's --dry_run and the freshly initialised weights of that model."""
    from espnet_lrsms.bin.asr_train import main as asr_train
    from espnet_lrsms.asr.task import LowRankASRTask

    out = tmp_path_factory.mktemp("asr_untrained")
    asr_train(train_command(tone_data, out, "--dry_run", "true")[3:])  # [python, -m, module] dropped
    torch.manual_seed(0)
    model, _ = LowRankASRTask.build_model_from_file(out / "config.yaml", None, "cpu")
    torch.save(model.state_dict(), out / "init.pth")
    return out


def test_decoding_writes_score_components_that_add_up(untrained_model, tone_data, tmp_path):
    from espnet_lrsms.bin.asr_inference import main as asr_inference

    train = tone_data / "train"
    keys = tmp_path / "keys.scp"
    keys.write_text("".join((train / "wav.scp").read_text().splitlines(keepends=True)[:2]))
    out = tmp_path / "decode"
    asr_inference([
        "--batch_size", "1", "--ngpu", "0", "--nbest", "3", "--beam_size", "3", "--ctc_weight", "0.3",
        "--penalty", "0.5", "--data_path_and_name_and_type", f"{train / 'wav.scp'},speech,sound",
        "--key_file", str(keys), "--asr_train_config", str(untrained_model / "config.yaml"),
        "--asr_model_file", str(untrained_model / "init.pth"), "--output_dir", str(out),
    ])
    for n in (1, 2, 3):
        lines = (out / f"{n}best_recog" / "score_components").read_text().splitlines()
        scores = dict(line.split(" ", 1) for line in (out / f"{n}best_recog" / "score").read_text().splitlines())
        assert len(lines) == len(scores) == 2
        for line in lines:
            key, _, payload = line.partition(" ")
            comp = json.loads(payload)
            assert set(comp["scores"]) == {"decoder", "ctc", "length_bonus"}
            assert comp["weights"] == {"decoder": 0.7, "ctc": 0.3, "length_bonus": 0.5}
            total = sum(comp["weights"][k] * v for k, v in comp["scores"].items())
            assert total == pytest.approx(parse_score(scores[key], key), abs=1e-3)  # ESPnet prints 4 decimals
    nbest = read_nbest(out)
    hyp = nbest[sorted(nbest)[0]][0]
    assert hyp.am_score(["decoder", "ctc"]) == pytest.approx(hyp.score - 0.5 * hyp.scores["length_bonus"], abs=1e-3)
