"""ESPnet's ``pack`` of a model that needs this package, and the message when it is missing.

A config naming ``encoder: lowrank_conformer`` (or another class this package registers) builds only
after ``import espnet_lrsms``; without it ESPnet stops at ``--encoder must be one of (...)``, which
this package cannot change. So the pack says it: :func:`pack_model` runs ESPnet's ``pack`` and adds
to its ``meta.yaml`` (which ESPnet's ``unpack`` reads only for ``files``/``yaml_files``)::

    espnet_lrsms: 0.2.0
    requires: [espnet-lrsms==0.2.0]
    espnet_lrsms_components: {encoder: lowrank_conformer, frontend: resnet1d, ...}
    load: "this model needs espnet_lrsms 0.2.0: pip install espnet-lrsms==0.2.0 and `import espnet_lrsms` before loading"

and this package's loaders (:meth:`LowRankASRTask.build_model_from_file`) turn an unknown component
into that message, with the version a ``meta.yaml`` above the config records (:func:`requirement_hint`).
A pack (its ``meta.yaml``) or config made by an older version that names a module a later release removed
gets, for each, the version that made it and the module that replaced it (:func:`removed_module_notes`;
the table is :data:`espnet_lrsms.version.REMOVED_IN`): a warning when it is unpacked, and part of the hint.

:func:`unpack_model` is ESPnet's ``unpack`` after checking every member name and every path in
``meta.yaml``: ESPnet's writes ``<outpath>/<name>`` for whatever the archive names (``../x``, ``/x``).
"""
import logging
import os
import re
import tarfile
import tempfile
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Union

import yaml

from espnet_lrsms.fileio import archive_member_path, replaced_on_success
from espnet_lrsms.version import REMOVED_IN, __version__

logger = logging.getLogger(__name__)
DOTTED_NAME = re.compile(r"\bespnet_lrsms(?:\.[A-Za-z_]\w*)+")

META = "meta.yaml"


def requirement(version: str) -> str:
    """What a model made with ``version`` of this package needs in order to load."""
    return (
        f"this model needs espnet_lrsms {version}: pip install espnet-lrsms=={version} "
        "and `import espnet_lrsms` before loading"
    )


def package_components(config: Mapping, class_choices: Sequence) -> Dict[str, str]:
    """``option → name`` for every option of ``config`` (an ESPnet config.yaml) that names a class of
    this package, read from ``class_choices`` (a task's ``class_choices_list``) and ESPnet's schedulers."""
    from espnet2.tasks.abs_task import scheduler_classes

    registries = {choices.name: choices.classes for choices in class_choices}
    registries["scheduler"] = scheduler_classes
    found = {}
    for option, classes in registries.items():
        name = config.get(option)
        cls = classes.get(name.lower()) if isinstance(name, str) else None
        if cls is not None and cls.__module__.startswith("espnet_lrsms."):
            found[option] = name
    return found


def pack_meta(configs: Iterable[Union[str, Path]], class_choices: Sequence) -> dict:
    """The keys :func:`pack_model` adds to ``meta.yaml`` for a pack of ``configs``."""
    components = {}
    for config in configs:
        with open(config, encoding="utf-8") as f:
            components.update(package_components(yaml.safe_load(f) or {}, class_choices))
    return {
        "espnet_lrsms": __version__,
        "requires": [f"espnet-lrsms=={__version__}"],
        "espnet_lrsms_components": components,
        "load": requirement(__version__),
    }


def rewrite_meta(source: Path, target: Path, extra: Mapping) -> None:
    """Copy the archive ``source`` to ``target`` (same format), ``extra`` added to its ``meta.yaml``."""
    from espnet2.main_funcs.pack_funcs import Archiver

    with Archiver(source) as old, Archiver(target, mode="w") as new:
        for info in old:
            name = old.get_name_from_info(info)
            if name == META:
                meta = yaml.safe_load(old.extractfile(info, mode="rb").read())
                data = yaml.safe_dump({**meta, **extra}).encode()
                new.addfile(new.generate_info(META, len(data)), BytesIO(data))
            else:
                new.addfile(info, old.extractfile(info, mode="rb"))


def pack_model(
    yaml_files: Mapping[str, str],
    files: Mapping[str, str],
    outpath: Union[str, Path],
    class_choices: Sequence,
    option: Iterable[str] = (),
) -> Path:
    """ESPnet's ``pack`` (same arguments, same archive) with :func:`pack_meta` of the configs in its
    ``meta.yaml`` (``class_choices``: the task's, e.g. ``AVSRTask.class_choices_list``, which holds the
    ASR task's too); ``outpath`` appears complete or not at all."""
    from espnet2.main_funcs.pack_funcs import pack

    outpath = Path(outpath)
    outpath.parent.mkdir(parents=True, exist_ok=True)
    extra = pack_meta(yaml_files.values(), class_choices)
    # ESPnet's Archiver reads the format from the name: both archives keep outpath's name
    with tempfile.TemporaryDirectory(dir=outpath.parent, prefix=".packing_") as work:
        packed, rewritten = Path(work) / "espnet" / outpath.name, Path(work) / outpath.name
        pack(files=dict(files), yaml_files=dict(yaml_files), outpath=packed, option=list(option))
        rewrite_meta(packed, rewritten, extra)
        with replaced_on_success(outpath) as tmp:
            os.replace(rewritten, tmp)
    return outpath


def pack_meta_file(config_file: Union[str, Path]) -> Optional[Path]:
    """The ``meta.yaml`` of ESPnet's ``unpack`` above ``config_file`` (one naming ``files``), or None."""
    for directory in Path(config_file).resolve().parents:
        meta = directory / META
        if meta.is_file():
            with meta.open(encoding="utf-8") as f:
                data = yaml.safe_load(f)
            if isinstance(data, dict) and "files" in data:
                return meta
    return None


def recorded_version(config_file: Union[str, Path]) -> Optional[str]:
    """The ``espnet_lrsms`` version in the ``meta.yaml`` of the unpacked pack holding ``config_file``
    (ESPnet's ``unpack`` puts it at the top, the config below), or None."""
    meta = pack_meta_file(config_file)
    if meta is None:
        return None
    version = yaml.safe_load(meta.read_text(encoding="utf-8")).get("espnet_lrsms")
    return None if version is None else str(version)


def requirement_hint(config_file: Union[str, Path]) -> str:
    """:func:`requirement` for the version the pack of ``config_file`` records, else the one installed; then
    :func:`removed_module_notes` of the config and of the pack's ``meta.yaml``."""
    recorded = recorded_version(config_file)
    installed = __version__
    hint = requirement(installed) if recorded is None or recorded == installed else \
        f"{requirement(recorded)} (installed: {installed})"
    texts = [Path(config_file).read_text(encoding="utf-8", errors="replace")] if Path(config_file).is_file() else []
    meta = pack_meta_file(config_file)
    if meta is not None:
        texts.append(meta.read_text(encoding="utf-8", errors="replace"))
    notes = removed_module_notes(texts, recorded)
    return "; ".join([hint, *notes])


def _version_key(version: str):
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def removed_module_notes(texts: Iterable[str], made_by: Optional[str]) -> List[str]:
    """One line for each module (or function) of this package named in ``texts`` that a release after
    ``made_by`` (the version that wrote them; None: unknown) removed: which version made them, which release
    removed it and what replaced it (:data:`espnet_lrsms.version.REMOVED_IN`)."""
    made = f"made by espnet_lrsms {made_by}" if made_by else "made by an espnet_lrsms that did not record its version"
    notes = []
    for text in texts:
        for name in DOTTED_NAME.findall(text):
            for release, removed in sorted(REMOVED_IN.items(), key=lambda item: _version_key(item[0])):
                if made_by and _version_key(made_by) >= _version_key(release):
                    continue
                # the longest removed name that ``name`` is or starts with (a module's class or function)
                hits = [old for old in removed if name == old or name.startswith(old + ".")]
                if hits:
                    old = max(hits, key=len)
                    note = (f"it names {old} ({made}), which espnet_lrsms {release} replaced by {removed[old]} "
                            f"(installed: espnet_lrsms {__version__}; see CHANGELOG.md)")
                    if note not in notes:
                        notes.append(note)
                    break
    return notes


def checked_pack_files(pack: Union[str, Path]) -> Dict[str, str]:
    """``key → member`` for every path the ``meta.yaml`` of ``pack`` (a zip or tar of ESPnet's ``pack``)
    names, after checking, before anything is extracted, that every member and every such path stays
    inside the folder it is unpacked to (``ValueError`` naming the pack and the member or key).

    A path stored absolute (ESPnet's ``pack`` does so for a file outside the working directory, and
    drops the leading ``/`` from the member's name) is the member without the ``/``; each must be in the pack.
    """
    from espnet2.main_funcs.pack_funcs import Archiver

    members, meta = set(), None
    try:
        with Archiver(pack) as archive:
            for info in archive:
                name = archive.get_name_from_info(info)
                archive_member_path(pack, name)
                if isinstance(info, tarfile.TarInfo) and not (info.isfile() or info.isdir()):
                    raise ValueError(f"{pack}: member {name!r} is a link or a device, which could point outside "
                                     "the archive; refusing to extract it")
                members.add(name)
                if meta is None and Path(name).name == META:  # the one ESPnet's unpack reads
                    meta = yaml.safe_load(archive.extractfile(info, mode="rb").read())
    except (zipfile.BadZipFile, tarfile.TarError, yaml.YAMLError) as error:
        raise ValueError(f"{pack}: not a readable ESPnet pack ({type(error).__name__}: {error})") from None
    if not isinstance(meta, dict) or not all(isinstance(meta.get(k), dict) for k in ("yaml_files", "files")):
        raise ValueError(f"{pack}: no {META} with ESPnet's 'yaml_files' and 'files' mappings (not an ESPnet pack)")
    found = {}
    for group in ("yaml_files", "files"):
        for key, value in meta[group].items():
            what = f"{META}'s {group}.{key}"
            if not isinstance(value, str):
                raise ValueError(f"{pack}: {what} is {value!r}, not a path")
            member = str(archive_member_path(pack, value[1:] if value.startswith("/") else value, what))
            if member not in members:
                raise ValueError(f"{pack}: {what} {value!r} is not in the pack")
            found[key] = member
    return found


def unpack_model(pack: Union[str, Path], outpath: Union[str, Path]) -> Dict[str, str]:
    """ESPnet's ``unpack`` of ``pack`` into ``outpath`` (configs' paths to packed files rewritten), once
    :func:`checked_pack_files` has passed; returns ``key → file`` (``asr_train_config``, ``asr_model_file``,
    ...), every file inside ``outpath``. Always extracts: ESPnet's cache would return the files of an
    earlier unpack, which nothing checked."""
    from espnet2.main_funcs.pack_funcs import unpack

    files = checked_pack_files(pack)
    unpack(str(pack), str(outpath), use_cache=False)
    meta = Path(outpath) / META
    if meta.is_file():
        data = yaml.safe_load(meta.read_text(encoding="utf-8")) or {}
        made_by = data.get("espnet_lrsms") if isinstance(data, dict) else None
        for note in removed_module_notes([meta.read_text(encoding="utf-8")], None if made_by is None else str(made_by)):
            logger.warning("%s (%s): %s", pack, META, note)
    return {key: str(Path(outpath) / member) for key, member in files.items()}
