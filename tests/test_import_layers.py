"""Imports only point down and never go round in a circle (docs/architecture.md), read from the source
with ``ast`` (nothing is imported).

Layers, bottom to top::

    0  lowrank, nets, fileio, workers, version pure PyTorch / Python: never import ESPnet
    1  train, scoring, packing                 what every family's ESPnet task shares
       text                                    Kaldi text, token types and counts, the n-best layout
       espnet_patches                          the one module that patches ESPnet (or torch) at run time
    2  asr, lm                                 sibling wings: low-rank ASR; LoRA LM and rescoring
    3  avsr                                    wing: AVSR (components, AVSRTask, build, decoding), built on asr
    4  registration, startup_hook              adds every wing's classes to ESPnet's registries
       deploy                                  ONNX export of a trained model; the ESPnet-free ONNX runtime
    5  recipe, analysis                        recipe stages and analysis tools as library functions
    6  bin                                     command-line entry points

A module imports from its own layer or below (``import espnet_lrsms``, which registers, counts as
``registration``); the sibling wings ``asr`` and ``lm`` import nothing from each other (what both need lives
in a layer below them); a ``bin`` module imports no other ``bin`` module; no module imports a private
(``_name``) of another module or reads one through an imported module; and no chain of imports, those in
function bodies included, leads from a module back to itself.
"""
import ast
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from conftest import REPO

PACKAGE = "espnet_lrsms"
LAYERS = {
    "lowrank": 0,
    "nets": 0,
    "fileio": 0,
    "workers": 0,
    "version": 0,
    "train": 1,
    "scoring": 1,
    "packing": 1,
    "text": 1,
    "espnet_patches": 1,
    "asr": 2,
    "lm": 2,
    "avsr": 3,
    "registration": 4,
    "startup_hook": 4,
    "deploy": 4,
    "recipe": 5,
    "analysis": 5,
    "bin": 6,
}
ROOT_LAYER = LAYERS["registration"]  # ``espnet_lrsms/__init__.py`` registers with ESPnet
SIBLINGS = ("asr", "lm")  # wings of one layer that import nothing from each other

# Sibling imports allowed by name: none (the fusion LM's task is given by the commands, above both wings).
KNOWN_SIBLING_IMPORTS = set()


def module_name(path: Path, package_dir: Path) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> Optional[int]:
    parts = module.split(".")
    return ROOT_LAYER if len(parts) == 1 else LAYERS.get(parts[1])


def is_module(name: str, package_dir: Path) -> bool:
    path = package_dir.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def sibling_of(module: str, target: str) -> bool:
    """``target`` is in another of the sibling wings (:data:`SIBLINGS`) than ``module``."""
    mine, theirs = module.split(".")[1:2], target.split(".")[1:2]
    return bool(mine and theirs) and mine != theirs and mine[0] in SIBLINGS and theirs[0] in SIBLINGS


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def imports_of(tree: ast.AST, module: str, is_package: bool) -> List[Tuple[int, str, Optional[str]]]:
    """(line, imported module, imported name or None) for every import, module-level or in a function."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                source = ".".join(base + ([source] if source else []))
            found += [(node.lineno, source, alias.name) for alias in node.names]
    return found


def circles(edges: Dict[str, Dict[str, str]]) -> List[str]:
    """One line per import circle: the modules that reach each other (a strongly connected component of
    ``edges``, module -> imported module -> where), each step with the file and line of its import."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    found = []

    def visit(module: str) -> None:  # Tarjan's algorithm; the package has ~150 modules, recursion is fine
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in edges.get(module, {}):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                members = set(component)
                steps = [
                    f"{a} -> {b} ({edges[a][b]})" for a in sorted(members) for b in sorted(edges.get(a, {})) if b in members
                ]
                found.append("import circle: " + "; ".join(steps))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def violations(package_dir: Path, allowed_sibling_imports=frozenset()) -> List[str]:
    """One line per broken rule; a ``(module, imported module)`` of ``allowed_sibling_imports`` is not reported."""
    problems = []
    edges: Dict[str, Dict[str, str]] = {}  # module -> imported module -> "file:line"
    for path in sorted(package_dir.rglob("*.py")):
        module = module_name(path, package_dir)
        where = path.relative_to(package_dir.parent)
        own = layer_of(module)
        if own is None:
            problems.append(f"{where}: {module.split('.')[1]} has no layer (add it to LAYERS and docs/architecture.md)")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        bound: Dict[str, str] = {}  # local name -> espnet_lrsms module it refers to
        for line, source, name in imports_of(tree, module, path.name == "__init__.py"):
            top = source.split(".")[0]
            if top in ("espnet", "espnet2") and own == 0:
                problems.append(f"{where}:{line}: {module} (pure, layer 0) imports {source}")
            if top != PACKAGE:
                continue
            target = source
            if name is not None and is_module(f"{source}.{name}", package_dir):
                target = f"{source}.{name}"
                bound[name] = target
            elif name is None:
                bound[source.split(".")[0]] = PACKAGE
            if name is not None and is_private(name) and target == source:
                problems.append(f"{where}:{line}: imports the private {name} of {source}")
            if any(is_private(part) for part in target.split(".")):
                problems.append(f"{where}:{line}: imports the private module {target}")
            if target != module:
                edges.setdefault(module, {}).setdefault(target, f"{where}:{line}")
            theirs = layer_of(target)
            if theirs is None:
                continue  # reported where that module itself is checked
            if theirs > own:
                problems.append(
                    f"{where}:{line}: {module} (layer {own}) imports {target} (layer {theirs}): imports only point down"
                )
            if sibling_of(module, target) and (module, target) not in allowed_sibling_imports:
                problems.append(f"{where}:{line}: {module} imports {target}: the sibling wings "
                                f"{' and '.join(SIBLINGS)} import nothing from each other")
            if own == LAYERS["bin"] and target.startswith(f"{PACKAGE}.bin.") and target != module:
                problems.append(f"{where}:{line}: the command {module} imports the command {target}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
                and is_private(node.attr)
            ):
                problems.append(f"{where}:{node.lineno}: reads the private {node.attr} of {bound[node.value.id]}")
    problems += circles(edges)
    return list(dict.fromkeys(problems))  # one line per import statement, not per name it imports


def test_imports_only_point_down():
    problems = violations(REPO / PACKAGE, KNOWN_SIBLING_IMPORTS)
    assert not problems, "\n".join(problems)


def sibling_imports(package_dir: Path) -> Dict[Tuple[str, str], str]:
    """``(module, imported module) -> "file:line"`` for every import from one sibling wing into another."""
    found: Dict[Tuple[str, str], str] = {}
    for wing in SIBLINGS:
        for path in sorted((package_dir / wing).rglob("*.py")):
            module = module_name(path, package_dir)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for line, source, name in imports_of(tree, module, path.name == "__init__.py"):
                target = f"{source}.{name}" if name is not None and is_module(f"{source}.{name}", package_dir) else source
                if sibling_of(module, target):
                    found.setdefault((module, target), f"{path.relative_to(package_dir.parent)}:{line}")
    return found


def test_asr_and_lm_import_nothing_from_each_other():
    """Issue 34: text handling and the n-best layout live below both wings (espnet_lrsms/text/), so no module
    of asr/ imports lm/ and none of lm/ imports asr/, imports inside functions included."""
    found = sibling_imports(REPO / PACKAGE)
    lm_to_asr = [f"{where}: {a} imports {b}" for (a, b), where in found.items() if a.startswith(f"{PACKAGE}.lm")]
    asr_to_lm = [f"{where}: {a} imports {b}" for (a, b), where in found.items()
                 if a.startswith(f"{PACKAGE}.asr") and (a, b) not in KNOWN_SIBLING_IMPORTS]
    assert lm_to_asr == []
    assert asr_to_lm == []
    stale = sorted(KNOWN_SIBLING_IMPORTS - set(found))
    assert not stale, f"KNOWN_SIBLING_IMPORTS names imports that are gone; remove them: {stale}"


def test_the_checker_sees_each_kind_of_violation(tmp_path):
    package = tmp_path / PACKAGE
    files = {
        "__init__.py": "",
        "lowrank/__init__.py": "import torch\nfrom espnet2.tasks import asr\n",
        "train/__init__.py": "",
        "train/trainer.py": "def run():\n    from espnet_lrsms.asr.dropout import hold\n",
        "asr/__init__.py": "",
        "asr/dropout.py": "def hold():\n    pass\n",
        "asr/front.py": "def _act():\n    pass\n",
        "asr/task.py": "import espnet_lrsms\nfrom espnet_lrsms.lowrank import x\n",
        "asr/pack.py": "def pack():\n    from espnet_lrsms.avsr.task import Task\n",
        "avsr/__init__.py": "",
        "avsr/video.py": "from espnet_lrsms.asr.front import _act\nfrom espnet_lrsms.asr import front\nfront._act()\n",
        "lm/__init__.py": "",
        "lm/task.py": "from espnet_lrsms.lm.scorer import load\n",
        "lm/scorer.py": "def load():\n    from espnet_lrsms.lm import task\n",
        "lm/fusion.py": "def score():\n    from espnet_lrsms.asr import dropout\n",
        "asr/decode.py": "from espnet_lrsms.lm.task import load\n",
        "bin/__init__.py": "",
        "bin/a.py": "from espnet_lrsms.bin.b import main\nfrom espnet_lrsms.asr.task import Task\n",
        "bin/b.py": "from espnet_lrsms.bin import a\n",
        "recipe/__init__.py": "",
        "recipe/sweep.py": "def mix():\n    from espnet_lrsms.bin import a\n",
        "elsewhere/__init__.py": "",
    }
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    problems = "\n".join(violations(package))
    assert "espnet_lrsms/lowrank/__init__.py:2: espnet_lrsms.lowrank (pure, layer 0) imports espnet2.tasks" in problems
    assert (
        "espnet_lrsms/train/trainer.py:2: espnet_lrsms.train.trainer (layer 1) imports espnet_lrsms.asr.dropout (layer 2)"
        in problems
    )
    assert "espnet_lrsms/asr/task.py:1: espnet_lrsms.asr.task (layer 2) imports espnet_lrsms (layer 4)" in problems
    assert "espnet_lrsms/asr/pack.py:2: espnet_lrsms.asr.pack (layer 2) imports espnet_lrsms.avsr.task (layer 3)" in problems
    assert "espnet_lrsms/avsr/video.py:1: imports the private _act of espnet_lrsms.asr.front" in problems
    assert "espnet_lrsms/avsr/video.py:3: reads the private _act of espnet_lrsms.asr.front" in problems
    assert "espnet_lrsms/bin/a.py:1: the command espnet_lrsms.bin.a imports the command espnet_lrsms.bin.b" in problems
    assert "espnet_lrsms/bin/b.py:1: the command espnet_lrsms.bin.b imports the command espnet_lrsms.bin.a" in problems
    assert "espnet_lrsms/recipe/sweep.py:2: espnet_lrsms.recipe.sweep (layer 5) imports espnet_lrsms.bin.a (layer 6)" in problems
    assert "espnet_lrsms/elsewhere/__init__.py: elsewhere has no layer" in problems
    assert (
        "import circle: espnet_lrsms.lm.scorer -> espnet_lrsms.lm.task (espnet_lrsms/lm/scorer.py:2); "
        "espnet_lrsms.lm.task -> espnet_lrsms.lm.scorer (espnet_lrsms/lm/task.py:1)" in problems
    )
    assert "import circle: espnet_lrsms.bin.a -> espnet_lrsms.bin.b" in problems
    assert ("espnet_lrsms/lm/fusion.py:2: espnet_lrsms.lm.fusion imports espnet_lrsms.asr.dropout: the sibling wings "
            "asr and lm import nothing from each other") in problems
    assert ("espnet_lrsms/asr/decode.py:1: espnet_lrsms.asr.decode imports espnet_lrsms.lm.task: the sibling wings "
            "asr and lm import nothing from each other") in problems
    assert len(problems.splitlines()) == 14, problems
    assert "asr.decode" not in "\n".join(violations(package, {("espnet_lrsms.asr.decode", "espnet_lrsms.lm.task")}))
