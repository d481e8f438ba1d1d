"""The decode loop writes, byte for byte, what the decoder before it (ESPnet's ``inference()`` run with swapped
globals) wrote for the same model and audio: tests/data/decode_reference/ (see its make_reference.py). Joint
CTC/attention with 3-best lists, and shallow fusion with a LoRA-adapted LM (2-best); the too-short utterance gets
ESPnet's empty hypothesis in every n-best folder."""
import importlib.util

import pytest

from conftest import REPO

REFERENCE = REPO / "tests" / "data" / "decode_reference"


def reference_module():
    spec = importlib.util.spec_from_file_location("make_reference", REFERENCE / "make_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["asr", "asr_lora_lm"])
def test_decoding_writes_the_reference_outputs_byte_for_byte(name, tmp_path):
    from espnet_lrsms.bin.asr_inference import main

    make = reference_module()
    out = tmp_path / name
    assert main(make.decode_command(name, make.wav_scp(tmp_path), out)) == 0
    expected = sorted(p.relative_to(REFERENCE / name) for p in (REFERENCE / name).rglob("*") if p.is_file())
    written = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert written == expected
    assert len(expected) == 5 * (3 if name == "asr" else 2)  # text, token, token_int, score, score_components
    for path in expected:
        assert (out / path).read_bytes() == (REFERENCE / name / path).read_bytes(), path
    assert "short 0.0\n" in (out / "1best_recog" / "score").read_text()
