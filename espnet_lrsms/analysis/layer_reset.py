"""Layer-reset ablation: which blocks of a trained model are "ambient" and which are "critical".

Method (Zhang, Bengio & Singer, "Are all layers created equal?", 2019; applied to Conformer ASR by
Zhou, Guliani et al., ICASSP 2022). Take a trained model and, for one block b of a sub-model at a
time (or one module inside it), put back

* ``reinit``: the block's *initial* weights W(0) (``<exp_dir>/0epoch.pth``, written by training), or
* ``rerandom``: fresh random weights, i.e. the weights of a newly built model of the same config
  (the same init as training, drawn with another seed: by default the training seed + 1, since the
  training seed itself would rebuild the initial weights, :func:`rerandom_seed`),

leave every other weight as trained, decode a dev set and score it. With WER₀ the trained model's
WER and WER_b the WER after resetting b, the block is

    ambient   if WER_b − WER₀ ≤ threshold   (``absolute``: in WER points), or
                 (WER_b − WER₀) / WER₀ ≤ threshold  (``relative``),
    critical  otherwise.

What is reset is every state-dict entry under the block's prefix: weights, biases, norms and
BatchNorm running statistics; for a factorized layer its factors ``u`` and ``vt`` (so reinit restores
the spectral-init factors and rerandom draws new ones the way training did).

The decodes run in ``nj`` worker processes; each loads the model once and takes one reset variant at
a time (the trained model itself first).
"""
import logging
import textwrap
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import yaml

from espnet_lrsms.analysis.weights import classify as classify_layer
from espnet_lrsms.fileio import load_weights_only, replaced_on_success, save_figure
from espnet_lrsms.lowrank import load_exact_state_dict
from espnet_lrsms.nets.espnet_names import BLOCK_STACKS
from espnet_lrsms.scoring.sclite import score_texts

MODES = ("reinit", "rerandom")
GRANULARITIES = ("block", "module")
THRESHOLD_TYPES = ("absolute", "relative")
CSV_FIELDS = ("submodel", "block", "module", "mode", "wer", "wer_increase", "errors", "words", "class")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResetTarget:
    """One block (``module`` None) or one module of a block, e.g. encoder block 3's ``self_attn``."""

    submodel: str
    block: int
    module: Optional[str] = None

    @property
    def prefix(self) -> str:
        """The state-dict prefix of what is reset, e.g. ``encoder.encoders.3.self_attn.``."""
        return f"{self.submodel}.{BLOCK_STACKS[self.submodel]}.{self.block}." + (f"{self.module}." if self.module else "")

    @property
    def name(self) -> str:
        return f"{self.submodel}.{self.block}" + (f".{self.module}" if self.module else "")


def reset_targets(state: Mapping[str, torch.Tensor], submodel: str, granularity: str) -> List[ResetTarget]:
    """Every block of ``submodel`` in ``state`` (granularity ``block``), or every module of every block
    (``module``: the first name below the block, e.g. ``self_attn``, ``feed_forward``, ``conv_module``,
    ``norm_ff``), in block order."""
    if submodel not in BLOCK_STACKS:
        raise ValueError(f"submodel: expected one of {list(BLOCK_STACKS)}, got {submodel!r}")
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity: expected one of {list(GRANULARITIES)}, got {granularity!r}")
    stack = f"{submodel}.{BLOCK_STACKS[submodel]}."
    found: Dict[int, Dict[str, None]] = {}
    for key in state:
        where = classify_layer(key.rpartition(".")[0])  # the analysis tools' one reading of ESPnet's key names
        if where.block is not None and key.startswith(stack):
            found.setdefault(where.block, {})[where.module.split(".", 1)[0]] = None
    if not found:
        raise ValueError(f"the checkpoint has no {submodel} blocks (no key starts with {submodel}.{BLOCK_STACKS[submodel]}.<b>.)")
    if granularity == "block":
        return [ResetTarget(submodel, b) for b in sorted(found)]
    return [ResetTarget(submodel, b, m) for b in sorted(found) for m in found[b]]


def reset_state(
    trained: Mapping[str, torch.Tensor], source: Mapping[str, torch.Tensor], target: ResetTarget, source_name: str
) -> Dict[str, torch.Tensor]:
    """``trained`` with every entry under ``target.prefix`` taken from ``source`` instead."""
    keys = [k for k in trained if k.startswith(target.prefix)]
    if not keys:
        raise ValueError(f"{target.name}: no weights under {target.prefix!r}")
    out = dict(trained)
    for key in keys:
        if key not in source:
            raise ValueError(f"{source_name}: has no {key} (a checkpoint of another model?)")
        if source[key].shape != trained[key].shape:
            raise ValueError(
                f"{source_name}: {key} has shape {tuple(source[key].shape)}, the trained model {tuple(trained[key].shape)}"
            )
        out[key] = source[key]
    return out


def classify(wer: float, baseline: float, threshold: float, threshold_type: str) -> str:
    """``ambient`` or ``critical`` (see the module docstring)."""
    if threshold_type not in THRESHOLD_TYPES:
        raise ValueError(f"threshold_type: expected one of {list(THRESHOLD_TYPES)}, got {threshold_type!r}")
    increase = wer - baseline
    if threshold_type == "relative":
        increase = increase / baseline if baseline > 0 else (0.0 if increase <= 0 else float("inf"))
    return "ambient" if increase <= threshold + 1e-9 else "critical"


# ---------------------------------------------------------------------------------------------------
# decoding workers: one Speech2Text per process, one reset variant per call


@dataclass(frozen=True)
class DecodeSetup:
    """What every worker needs to build its decoder and its reset sources."""

    config: Path  # the experiment's config.yaml
    model: Path  # trained weights
    sources: Tuple[Tuple[str, Path], ...]  # (mode, state dict file), e.g. ("reinit", .../0epoch.pth)
    wav_scp: Path
    uttids: Tuple[str, ...]
    decode_conf: Tuple[Tuple[str, object], ...]  # Speech2Text keyword arguments (beam_size, ctc_weight, ...)
    threads: int


_WORKER: dict = {}


def _init_worker(setup: DecodeSetup) -> None:
    import espnet_lrsms  # noqa: F401  (registers the low-rank classes in a spawned worker)
    from espnet2.bin.asr_inference import Speech2Text
    from espnet2.fileio.sound_scp import SoundScpReader

    torch.set_num_threads(setup.threads)
    speech2text = Speech2Text(asr_train_config=setup.config, asr_model_file=None, device="cpu", **dict(setup.decode_conf))
    # ESPnet would load the checkpoint with strict=False: load it exactly (weights-only) into the same modules
    load_exact_state_dict(speech2text.asr_model, load_weights_only(setup.model), f"{setup.model} (config {setup.config})")
    reader = SoundScpReader(str(setup.wav_scp), dtype="float32")
    _WORKER.update(
        speech2text=speech2text,
        trained={k: v.clone() for k, v in speech2text.asr_model.state_dict().items()},
        sources={mode: torch.load(path, map_location="cpu", mmap=True, weights_only=True) for mode, path in setup.sources},
        reader=reader,  # read per decode: a dev set's audio need not fit in every worker's memory
        uttids=setup.uttids,
    )


@torch.no_grad()
def _decode_variant(mode: Optional[str], target: Optional[ResetTarget]) -> Dict[str, str]:
    """Hypotheses of every utterance with ``target`` reset from ``mode``'s source (None: as trained)."""
    speech2text, trained = _WORKER["speech2text"], _WORKER["trained"]
    if target is None:
        state = trained
    else:
        state = reset_state(trained, _WORKER["sources"][mode], target, f"{mode} weights")
    speech2text.asr_model.load_state_dict(state)
    hyps = {}
    for uttid in _WORKER["uttids"]:
        audio = _WORKER["reader"][uttid]
        wave = audio[1] if isinstance(audio, tuple) else audio  # (rate, samples)
        results = speech2text(torch.as_tensor(wave))
        hyps[uttid] = results[0][0] if results else ""
    speech2text.asr_model.load_state_dict(trained)
    return hyps


def run_ablation(
    setup: DecodeSetup,
    targets: Sequence[ResetTarget],
    modes: Sequence[str],
    nj: int,
    progress=None,
) -> Tuple[Dict[str, str], Dict[Tuple[str, ResetTarget], Dict[str, str]]]:
    """Decode the trained model and every (mode, target) variant in ``nj`` worker processes.

    Returns the trained model's hypotheses and those of each variant (uttid → text).
    """
    jobs = [(None, None)] + [(mode, t) for mode in modes for t in targets]
    context = get_context("spawn")  # a fresh interpreter per worker: no torch thread pools inherited
    results = {}
    with ProcessPoolExecutor(max_workers=nj, mp_context=context, initializer=_init_worker, initargs=(setup,)) as pool:
        futures = {pool.submit(_decode_variant, mode, target): (mode, target) for mode, target in jobs}
        for future in _as_completed(futures, progress):
            results[futures[future]] = future.result()
    baseline = results.pop((None, None))
    return baseline, {job: results[job] for job in jobs[1:]}  # in job order, not completion order


def _as_completed(futures, progress):
    from concurrent.futures import as_completed

    done = as_completed(futures)
    if progress is not None:
        done = progress(done, total=len(futures), desc="reset variants decoded", unit="decode")
    return done


def wer_of(refs: Mapping[str, str], hyps: Mapping[str, str]) -> Tuple[float, int, int]:
    """(WER in %, errors, reference words) over the utterances of ``refs``."""
    total = score_texts({k: v.split() for k, v in refs.items()}, {k: v.split() for k, v in hyps.items()}, {}).total
    errors = total.substitutions + total.deletions + total.insertions
    return 100.0 * errors / max(total.words, 1), errors, total.words


def ablation_rows(
    refs: Mapping[str, str],
    baseline_hyps: Mapping[str, str],
    variant_hyps: Mapping[Tuple[str, ResetTarget], Mapping[str, str]],
    threshold: float,
    threshold_type: str,
) -> List[dict]:
    """One CSV row for the trained model (mode ``none``), then one per (mode, target): modes in
    :data:`MODES` order, targets in the order of ``variant_hyps`` (the model's order)."""
    base_wer, base_err, words = wer_of(refs, baseline_hyps)
    rows = [dict(submodel="", block="", module="", mode="none", wer=round(base_wer, 2), wer_increase=0.0,
                 errors=base_err, words=words, **{"class": ""})]
    order = {m: i for i, m in enumerate(MODES)}
    for (mode, target), hyps in sorted(variant_hyps.items(), key=lambda item: order[item[0][0]]):
        wer, errors, _ = wer_of(refs, hyps)
        rows.append(dict(
            submodel=target.submodel, block=target.block, module=target.module or "(all)", mode=mode,
            wer=round(wer, 2), wer_increase=round(wer - base_wer, 2), errors=errors, words=words,
            **{"class": classify(wer, base_wer, threshold, threshold_type)},
        ))
    return rows


def ambient_blocks(rows: Sequence[Mapping], mode: str) -> List[int]:
    """The ambient blocks under ``mode`` (whole-block rows), most ambient (least WER increase) first."""
    mine = [r for r in rows if r["mode"] == mode and r["module"] == "(all)" and r["class"] == "ambient"]
    return [int(r["block"]) for r in sorted(mine, key=lambda r: (float(r["wer_increase"]), int(r["block"])))]


def critical_blocks(rows: Sequence[Mapping], mode: str) -> List[int]:
    """The critical blocks under ``mode`` (whole-block rows), most critical (largest WER increase) first."""
    mine = [r for r in rows if r["mode"] == mode and r["module"] == "(all)" and r["class"] == "critical"]
    return [int(r["block"]) for r in sorted(mine, key=lambda r: (-float(r["wer_increase"]), int(r["block"])))]


def plot_ablation(rows: Sequence[Mapping], threshold: float, threshold_type: str, path: Path, title: str) -> Path:
    """Bar plot: WER after each reset, a group of bars per block (or module), one bar per mode,
    coloured by class; dashed lines at the trained model's WER and at the ambient threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = next(float(r["wer"]) for r in rows if r["mode"] == "none")
    variants = [r for r in rows if r["mode"] != "none"]
    modes = [m for m in MODES if any(r["mode"] == m for r in variants)]
    labels = list(dict.fromkeys(
        f"{r['block']}" if r["module"] == "(all)" else f"{r['block']}.{r['module']}" for r in variants
    ))
    width = 0.8 / max(len(modes), 1)
    fig, ax = plt.subplots(figsize=(min(max(7.5, 0.25 * len(labels) * len(modes) + 3.5), 20.0), 4.5))
    colours = {"ambient": "tab:green", "critical": "tab:red"}
    hatches = {"reinit": "", "rerandom": "//"}
    for i, mode in enumerate(modes):
        mine = {(f"{r['block']}" if r["module"] == "(all)" else f"{r['block']}.{r['module']}"): r
                for r in variants if r["mode"] == mode}
        for j, label in enumerate(labels):
            if label in mine:
                r = mine[label]
                ax.bar(j + (i - (len(modes) - 1) / 2) * width, float(r["wer"]), width,
                       color=colours[r["class"]], hatch=hatches[mode], edgecolor="black", linewidth=0.5)
    ax.axhline(base, color="black", linestyle="--", linewidth=1, label=f"trained model ({base:.1f} %)")
    limit = base + threshold if threshold_type == "absolute" else base * (1 + threshold)
    ax.axhline(limit, color="tab:green", linestyle=":", linewidth=1, label=f"ambient threshold ({limit:.1f} %)")
    from matplotlib.patches import Patch

    handles = ax.get_legend_handles_labels()[0]
    handles += [Patch(facecolor=c, edgecolor="black", label=k) for k, c in colours.items()]
    handles += [Patch(facecolor="white", edgecolor="black", hatch=hatches[m], label=m) for m in modes]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=90 if len(labels) > 16 else 0, fontsize=8)
    submodel = variants[0]["submodel"] if variants else ""
    ax.set_xlabel(f"{submodel} block" + (".module" if any(r["module"] != "(all)" for r in variants) else "") + " reset")
    ax.set_ylabel("WER (%)")
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path


def rerandom_seed(config: Path, seed: Optional[int] = None) -> Tuple[int, int]:
    """(seed of the rerandom weights, the experiment's training seed): ``seed`` if given, else the
    training seed + 1. ESPnet seeds the init with ``seed:`` of ``config`` (0 when absent), so that seed
    would draw exactly the initial weights again."""
    trained = (yaml.safe_load(Path(config).read_text()) or {}).get("seed", 0)
    if isinstance(trained, bool) or not isinstance(trained, int):
        raise ValueError(f"{config}: seed: expected an integer, got {trained!r}")
    return (trained + 1 if seed is None else seed), trained


def write_random_init(config: Path, seed: int, path: Path) -> Path:
    """The state dict of a newly built model of ``config`` (training's init, drawn with ``seed``)."""
    from espnet_lrsms.asr.task import LowRankASRTask

    torch.manual_seed(seed)
    model, _ = LowRankASRTask.build_model_from_file(config, None, "cpu")
    with replaced_on_success(path) as tmp:
        torch.save(model.state_dict(), tmp)
    return path
