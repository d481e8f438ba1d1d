"""ESPnet and torch are patched in one module, espnet_lrsms/espnet_patches.py, for the ESPnet release it was
written for (issue 34 item 2); the decoder builds its fusion LM without asr/ importing the LM task (item 1)."""
import ast

import pytest

from conftest import REPO

PACKAGE = REPO / "espnet_lrsms"
FOREIGN = ("espnet", "espnet2", "torch", "torchaudio")


def test_another_espnet_release_is_refused_naming_both():
    import espnet

    from espnet_lrsms.espnet_patches import ESPNET_VERSION, check_espnet_version

    check_espnet_version(espnet.__version__)
    with pytest.raises(RuntimeError, match="written for ESPnet 202511, but ESPnet 202604 is installed"):
        check_espnet_version("202604")
    assert ESPNET_VERSION == "202511"


def test_a_patch_lasts_for_its_block_only():
    from espnet2.bin import asr_inference
    from espnet2.tasks import abs_task

    from espnet_lrsms.espnet_patches import module_globals, speech2text_tasks, weights_only_init_param

    asr_task, lm_task, loader = asr_inference.ASRTask, asr_inference.LMTask, abs_task.load_pretrained_model
    with speech2text_tasks(dict, list), weights_only_init_param(print):
        assert (asr_inference.ASRTask, asr_inference.LMTask, abs_task.load_pretrained_model) == (dict, list, print)
    assert (asr_inference.ASRTask, asr_inference.LMTask, abs_task.load_pretrained_model) == (asr_task, lm_task, loader)
    with pytest.raises(RuntimeError, match=r"espnet2.bin.asr_inference has no \['SpeechToText'\]"):
        with module_globals("espnet2.bin.asr_inference", {"SpeechToText": dict}):
            pass


def foreign_assignments(source: str, where: str):
    """Each statement of ``source`` that sets or deletes an attribute of something imported from ESPnet or torch
    (a module, a class, a module fetched by ``importlib.import_module`` or ``sys.modules``)."""
    tree = ast.parse(source)
    foreign = set()
    for _ in range(2):  # a name bound from a foreign one (a loop over fetched modules) is foreign too
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                foreign |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] in FOREIGN}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FOREIGN:
                foreign |= {a.asname or a.name for a in node.names}
            elif isinstance(node, ast.Assign) and any(s in ast.unparse(node.value) for s in ("import_module(", "sys.modules[")):
                foreign |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif isinstance(node, (ast.For, ast.comprehension)) and {
                    n.id for n in ast.walk(node.iter) if isinstance(n, ast.Name)} & foreign:
                foreign |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}

    def root(node):
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
            targets = [ast.Attribute(value=node.args[0], attr="?")] if node.args else []
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, ast.Attribute) and root(part) in foreign:
                    found.append(f"{where}:{node.lineno}: {ast.unparse(node).splitlines()[0]}")
                    break
    return sorted(found, key=lambda line: int(line.split(":")[1]))


def test_only_espnet_patches_sets_attributes_of_espnet_or_torch():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name != "espnet_patches.py" or path.parent != PACKAGE:
            found += foreign_assignments(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    assert not found, "\n".join(found)


def test_the_checker_sees_each_kind_of_patch():
    source = (
        "import torch\nimport importlib\nfrom espnet2.bin import asr_inference as ai\n"
        "from espnet2.tasks.abs_task import AbsTask\n"
        "torch.save = print\n"
        "def f(name, value):\n"
        "    from espnet2.tasks import abs_task\n"
        "    abs_task.load_pretrained_model = value\n"
        "    setattr(ai, name, value)\n"
        "    modules = [importlib.import_module(n) for n in ('espnet2.train.trainer',)]\n"
        "    for module in modules:\n"
        "        module.torch = value\n"
        "    AbsTask.main_worker = value\n"
        "    del torch.nn.functional.relu\n"
        "    model = torch.nn.Linear(2, 2)\n"
        "    model.weight = value\n"  # an instance of a torch class: not a patch
    )
    assert [line.split(":")[1] for line in foreign_assignments(source, "x")] == ["5", "8", "9", "12", "13", "14"]


def test_asr_builds_its_fusion_lm_without_importing_the_lm_task():
    """Shallow fusion's LM task is given by the commands (LoRALMTask), not imported by asr/, which takes
    nothing from lm/ (the n-best format lives in text/ below both)."""
    imported = set()
    for path in sorted((PACKAGE / "asr").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("espnet_lrsms.lm"):
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name.startswith("espnet_lrsms.lm")}
    assert not imported, sorted(imported)
