"""Recipe options that reach bash arithmetic take whole numbers only (no command runs from an option value)."""
import subprocess

import pytest

from conftest import REPO

RECIPES = [REPO / "egs2" / "librispeech" / "asr1", REPO / "egs2" / "lrs3" / "avsr1"]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.parent.name + "/" + p.name)
@pytest.mark.parametrize("option", ["--stage", "--stop_stage", "--nj", "--inference_nj", "--ngpu", "--num_nodes"])
def test_integer_option_rejects_a_command(tmp_path, recipe, option):
    marker = tmp_path / "ran"
    value = f"x[$(touch {marker})]"
    result = subprocess.run(["./run.sh", option, value], cwd=recipe, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"option {option} takes a whole number, got '{value}'" in result.stderr
    assert not marker.exists()
