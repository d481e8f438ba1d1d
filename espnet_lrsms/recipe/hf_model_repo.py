"""Stage 15: a Hugging Face model repository made from a packed model, as ESPnet's upload stage makes it.

The repository is written into a directory: the pack's files (ESPnet's ``meta.yaml``, the training config,
the model, the BPE model, RESULTS.md, images, a fused LM) and a model card ``README.md`` (front matter with
ESPnet's tags, how to install and use the model, the RESULTS tables, the training config). The directory is
then uploaded with ``huggingface_hub`` — only when a repository id is given; nothing else here reaches the
network.
"""
import logging
import zipfile
from importlib.metadata import version
from pathlib import Path, PurePosixPath
from typing import Dict, Optional

import yaml

from espnet_lrsms.fileio import archive_member_path, replaced_on_success

logger = logging.getLogger(__name__)


class ModelRepoError(RuntimeError):
    """A pack that cannot become a model repository; the message names the file or member."""


def _safe_members(archive: zipfile.ZipFile, pack: Path):
    for info in archive.infolist():
        try:
            archive_member_path(pack, info.filename)
        except ValueError as error:
            raise ModelRepoError(str(error)) from None
        yield info


def read_pack_meta(pack: Path) -> Dict:
    """ESPnet's ``meta.yaml`` of a pack (``files``, ``yaml_files``, versions)."""
    if not zipfile.is_zipfile(pack):
        raise ModelRepoError(f"{pack}: not a zip archive (make it with the packing stage, stage 14)")
    with zipfile.ZipFile(pack) as archive:
        if "meta.yaml" not in archive.namelist():
            raise ModelRepoError(f"{pack}: no meta.yaml in it (not an ESPnet pack)")
        meta = yaml.safe_load(archive.read("meta.yaml"))
    if not isinstance(meta, dict) or not isinstance(meta.get("yaml_files"), dict) or not isinstance(meta.get("files"), dict):
        raise ModelRepoError(f"{pack}: meta.yaml lacks ESPnet's 'files' and 'yaml_files' mappings")
    return meta


def model_card(repo_id: str, meta: Dict, config_text: str, results_md: str, corpus: str, lang: str, task: str) -> str:
    """README.md of the repository: ESPnet's model card layout, with how to load a low-rank model."""
    package = version("espnet_lrsms")
    config_file = meta["yaml_files"].get(f"{task}_train_config", next(iter(meta["yaml_files"].values()), ""))
    model_file = meta["files"].get(f"{task}_model_file", next(iter(meta["files"].values()), ""))
    pipeline = "automatic-speech-recognition"
    lm_config, lm_file = meta["yaml_files"].get("lm_train_config"), meta["files"].get("lm_file")
    lm_args = f" \\\n    --lm_train_config {lm_config} --lm_file {lm_file}" if lm_config and lm_file else ""
    results = results_md.split("\n", 1)[1] if results_md.startswith("# RESULTS") else results_md
    return f"""---
tags:
- espnet
- espnet_lrsms
- audio
- {pipeline}
- low-rank
language: {lang}
datasets:
- {corpus}
license: cc-by-4.0
library_name: espnet
pipeline_tag: {pipeline}
---

## ESPnet2 {task.upper()} model with low-rank weights trained from scratch (LR-SMS)

### `{repo_id}`

Trained with the `{corpus}` recipe of espnet_lrsms {package} on ESPnet {meta.get('espnet_version', version('espnet'))}
(PyTorch {meta.get('torch_version', version('torch'))}).

### How to use

The encoder, decoder and front end of this model are registered by the `espnet_lrsms` package: install it
and let it register them before ESPnet loads the model (its own commands do).

```bash
pip install "espnet_lrsms=={package}"    # brings espnet==202511 and torch
python -m espnet_lrsms.bin.{task}_inference --{task}_train_config {config_file} \\
    --{task}_model_file {model_file} --data_path_and_name_and_type wav.scp,speech,sound \\
    --output_dir decoded --batch_size 1 --ngpu 0{lm_args}
```

From Python: `import espnet_lrsms` first, then ESPnet's `Speech2Text(asr_train_config=..., asr_model_file=...)`.

{results.strip()}

## {task.upper()} config

<details><summary>expand</summary>

```yaml
{config_text.rstrip()}
```

</details>
"""


def write_model_repo(pack: Path, out_dir: Path, repo_id: str, corpus: str, lang: str = "en", task: str = "asr") -> Path:
    """``out_dir`` = the pack's files + README.md (written under a temporary name, then renamed)."""
    meta = read_pack_meta(pack)
    with zipfile.ZipFile(pack) as archive, replaced_on_success(out_dir) as tmp:
        tmp.mkdir(parents=True)
        names = set()
        for info in _safe_members(archive, pack):
            archive.extract(info, tmp)
            names.add(info.filename)
        config_name = str(next(iter(meta["yaml_files"].values()), "")).lstrip("/")  # zip members drop a leading /
        if config_name not in names:
            raise ModelRepoError(f"{pack}: the training config {config_name!r} named in meta.yaml is not in the pack")
        results = [n for n in names if PurePosixPath(n).name == "RESULTS.md"]
        results_md = (tmp / results[0]).read_text(encoding="utf-8") if results else "# RESULTS\n\n(no RESULTS.md in the pack)\n"
        card = model_card(repo_id, meta, (tmp / config_name).read_text(encoding="utf-8"), results_md, corpus, lang, task)
        (tmp / "README.md").write_text(card, encoding="utf-8")
    logger.info("wrote the model repository %s (%d files from %s)", out_dir, len(names), pack)
    return out_dir


def push_model_repo(repo_dir: Path, repo_id: str, private: bool = False, token: Optional[str] = None) -> str:
    """Create ``repo_id`` on the Hugging Face hub if needed and upload ``repo_dir``; returns its URL."""
    if not (repo_dir / "README.md").is_file():
        raise ModelRepoError(f"{repo_dir}: no README.md (write it from a pack first: stage 15)")
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, folder_path=str(repo_dir), repo_type="model",
                               commit_message=f"espnet_lrsms {version('espnet_lrsms')} model")
    return str(commit.commit_url)
