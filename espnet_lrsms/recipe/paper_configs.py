"""The paper's training configs: ASR (LR-SMS Tables I and II, and the Fig. 4 pair with the traditional
Kaiming init) in ``conf/asr/`` and AVSR (Table III) in ``conf/avsr/``, each directory with its manifest
``paper_rows.tsv`` (config → the paper row it reproduces; read by ``espnet_lrsms.bin.count_params``
and the tests).

    python -m espnet_lrsms.bin.make_paper_configs [--conf_dir conf]

The configs are committed, and ``tests/recipe/test_config_generator.py`` checks that they are exactly what
this module writes: change a row or a shared block here, never a generated file. ``ROWS`` is the one
list of rows; the manifests are written from it. Every file is complete on its own, as ESPnet users
expect, and comments the keys one edits. ``--copy <row> --out <file>`` (:func:`copy_paper_config`) writes a
user's editable copy of a row, without the "never edit" line.

Architecture: a ResNet-18 1-D front end on the raw 16 kHz waveform, a 12-block 768-d Conformer
encoder, a 6-block Transformer decoder and CTC (243 M parameters at full rank with 5000 tokens). AVSR
(docs/avsr.md explains the choices) adds Auto-AVSR's visual front end (3-D conv stem + 2-D ResNet-18,
512-d per frame) and its fusion MLP (1024 → 8192 → 768, batch norm, ReLU) on the concatenated
front-end features, feeding the Conformer blocks directly (``input_layer: null``): 268.43 M
parameters at full rank (paper 268.5 M).
"""
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from espnet_lrsms.fileio import config_yaml, write_text_atomic, yaml_body

Spec = Union[None, float, List[float]]  # a lowrank: entry: None = dense, α, or [α_i, α_f]

COMMAND = "python -m espnet_lrsms.bin.make_paper_configs"
COPY_COMMAND = f"{COMMAND} --copy"  # <row or yaml> --out <file>: an editable copy (copy_paper_config)
MANIFEST = "paper_rows.tsv"


@dataclass(frozen=True)
class PaperRow:
    """One config: the paper row it reproduces and its rank schedule (both specs None: full rank)."""

    stem: str  # conf/<task>/train_<task>_conformer_<stem>.yaml
    table: str
    row: str
    params_m: Union[int, float]  # the paper's parameter count in millions, as the paper prints it
    mhsa: Spec = None
    ffn: Spec = None
    init: str = "svd"

    @property
    def dense(self) -> bool:
        return self.mhsa is None and self.ffn is None


ASR_ROWS = (
    PaperRow("full_rank", "Tables I/II", "full rank (baseline)", 243),
    PaperRow("uniform_mhsa_ffn_a0.25", "Table I", "MHSA & FFNs, alpha = 0.25", 113, 0.25, 0.25),
    PaperRow("uniform_mhsa_ffn_a0.23", "Table I", "MHSA & FFNs, alpha = 0.23", 107, 0.23, 0.23),
    PaperRow("uniform_mhsa_ffn_a0.12", "Table I", "MHSA & FFNs, alpha = 0.12", 74.2, 0.12, 0.12),
    PaperRow("uniform_mhsa_a0.25", "Table I", "MHSA, alpha = 0.25", 211, 0.25),
    PaperRow("uniform_mhsa_a0.12", "Table I", "MHSA, alpha = 0.12", 194, 0.12),
    PaperRow("uniform_mhsa_a0.06", "Table I", "MHSA, alpha = 0.06", 186, 0.06),
    PaperRow("uniform_ffn_a0.50", "Table I", "FFNs, alpha = 0.50", 189, ffn=0.5),
    PaperRow("uniform_ffn_a0.25", "Table I", "FFNs, alpha = 0.25", 145, ffn=0.25),
    PaperRow("uniform_ffn_a0.06", "Table I", "FFNs, alpha = 0.06", 112, ffn=0.06),
    PaperRow("linear_mhsa0.1-0.2", "Table II", "linear, MHSA [0.1, 0.2], FFNs full rank", 197, [0.1, 0.2]),
    PaperRow("linear_mhsa0.2-0.4_ffn0.4-0.6", "Table II", "linear, MHSA [0.2, 0.4], FFNs [0.4, 0.6]", 161,
             [0.2, 0.4], [0.4, 0.6]),
    PaperRow("lrsms", "Table II", "LR-SMS: linear, MHSA [0.1, 0.2], FFNs [0.2, 0.5]", 115, [0.1, 0.2], [0.2, 0.5]),
    PaperRow("linear_mhsa0.1-0.2_ffn0.2-0.4", "Table II", "linear, MHSA [0.1, 0.2], FFNs [0.2, 0.4]", 107,
             [0.1, 0.2], [0.2, 0.4]),
    # Fig. 4: the traditional Kaiming init (each factor as its own nn.Linear) against SVD (the uniform
    # FFN rows above), same parameters
    PaperRow("uniform_ffn_a0.06_kaiming", "Fig. 4", "FFNs, alpha = 0.06, traditional Kaiming init", 112,
             ffn=0.06, init="kaiming_traditional"),
    PaperRow("uniform_ffn_a0.25_kaiming", "Fig. 4", "FFNs, alpha = 0.25, traditional Kaiming init", 145,
             ffn=0.25, init="kaiming_traditional"),
    PaperRow("uniform_ffn_a0.50_kaiming", "Fig. 4", "FFNs, alpha = 0.50, traditional Kaiming init", 189,
             ffn=0.5, init="kaiming_traditional"),
)

AVSR_ROWS = (
    PaperRow("full_rank", "Table III", "full rank (MSRS)", 268.5),
    PaperRow("linear_mhsa0.1-0.3_ffn0.3-0.5", "Table III", "linear, MHSA [0.1, 0.3], FFNs [0.3, 0.5]", 156,
             [0.1, 0.3], [0.3, 0.5]),
    PaperRow("lrsms", "Table III", "LR-SMS: linear, MHSA [0.1, 0.2], FFNs [0.2, 0.5] (140 M in the table, "
             "130 M in the text)", 140, [0.1, 0.2], [0.2, 0.5]),
    PaperRow("linear_mhsa0.1-0.2_ffn0.2-0.4", "Table III", "linear, MHSA [0.1, 0.2], FFNs [0.2, 0.4]", 132,
             [0.1, 0.2], [0.2, 0.4]),
)

# ------------------------------------------------------------------------------ the shared blocks
AUDIO_FRONTEND = """\
frontend: resnet1d          # raw 16 kHz waveform -> z-norm -> ResNet-18 1-D -> 512-d at 25 frames/s
frontend_conf:
    activation: swish
    time_mask:              # adaptive time masking of the waveform (the SpecAugment here); leave it out for none
        window: 6400        # each mask shorter than 0.4 s (16 kHz samples)
        stride: 16000       # one mask per second of audio
normalize: null             # the front end z-normalises each utterance itself
"""

VIDEO_FRONTEND_AND_FUSION = """
video_frontend: resnet2d    # 96x96 grey mouth crops -> 88x88 crop -> 3-D stem + ResNet-18 2-D -> 512-d per frame
video_frontend_conf:
    crop_size: 88           # random crop + horizontal flip in training, centre crop at test
    flip_prob: 0.5          # probability of the horizontal flip
    activation: swish
    time_mask:              # adaptive time masking of the frames; leave it out for none
        window: 10          # each mask shorter than 0.4 s (frames at 25 fps)
        stride: 25          # one mask per second of video

fusion: mlp                 # concat(audio, video) 1024 -> 8192 -> BN -> ReLU -> 768, frame by frame
fusion_conf:
    hidden_units: 8192      # width of the fusion MLP's hidden layer
    output_size: 768        # = encoder_conf.output_size (the encoder takes the fused frames as they are)
    norm: batch_norm
"""

ENCODER = """\
{encoder}
encoder_conf:
    output_size: 768        # model width d
    attention_heads: 12     # d / heads = 64 dimensions per head
    linear_units: 3072      # hidden width of each feed-forward module (4 d)
    num_blocks: 12          # B: a linear rank schedule [α_i, α_f] runs over these blocks
    dropout_rate: 0.1
    positional_dropout_rate: 0.1
    attention_dropout_rate: 0.1
    input_layer: {input_layer}
    normalize_before: true
    macaron_style: true
    rel_pos_type: latest
    pos_enc_layer_type: rel_pos
    selfattention_layer_type: rel_selfattn
    activation_type: swish
    use_cnn_module: true
    cnn_module_kernel: 31   # kernel of the depthwise convolution module (never factorized)
{lowrank}"""

DECODER = """\
{decoder}
decoder_conf:
    attention_heads: 12     # of the 768-d (encoder_conf.output_size) decoder: 64 dimensions per head
    linear_units: 3072      # hidden width of each feed-forward module
    num_blocks: 6           # B of the decoder's own rank schedule
    dropout_rate: 0.1
    positional_dropout_rate: 0.1
    self_attention_dropout_rate: 0.1
    src_attention_dropout_rate: 0.1
{lowrank}"""

TRAINING = """\
{model}model_conf:
    ctc_weight: 0.1         # CTC's share of the joint CTC/attention loss
    lsm_weight: 0.1         # label smoothing of the attention decoder
    length_normalized_loss: false
{model_conf}
optim: adamw
optim_conf:
    lr: {lr:<20}# peak learning rate, reached at the end of the warm-up
    betas: [0.9, 0.98]
    weight_decay: 0.03
{scheduler}max_epoch: 75               # training epochs: change scheduler_conf.total_epochs with it
# At most {frames} frames ({seconds} s of 16 kHz audio = {samples:,} samples) per GPU, at any GPU count: training
# sets ESPnet's global batch_bins to this times the number of GPUs (the paper used {gpus} for {task}).
batch_type: length
batch_bins_per_gpu: {samples}  # lower it if a GPU runs out of memory
grad_clip: 5.0
best_model_criterion:
-   - valid
    - acc
    - max
keep_nbest_models: 10       # the best checkpoints kept, averaged into valid.acc.ave.pth
"""


@dataclass(frozen=True)
class PaperTask:
    """What the configs of one task have of their own; the rest is the shared blocks above."""

    name: str  # asr / avsr: the directory conf/<name>/ and the file names train_<name>_conformer_*.yaml
    rows: Tuple[PaperRow, ...]
    corpus: str  # after the table in the first header line
    notes: Tuple[str, ...]  # header lines after the count_params line
    frontends: str
    input_layer: str
    model: str  # the model: line ("" for ESPnet's default)
    model_conf: str  # model_conf lines after the shared ones
    lr: float
    scheduler: str  # the comment, scheduler: and scheduler_conf: lines
    batch_seconds: int  # per GPU, of 16 kHz audio
    paper_gpus: int


ASR = PaperTask(
    name="asr",
    rows=ASR_ROWS,
    corpus="",
    notes=(
        "Augmentation as in the paper: adaptive time masking only, no speed perturbation",
        "(the recipe's default --speed_perturb_factors \"\"; ESPnet's LibriSpeech recipe uses \"0.9 1.0 1.1\").",
    ),
    frontends=AUDIO_FRONTEND,
    input_layer="linear",
    model="",
    model_conf="",
    lr=0.0006,
    scheduler="""\
# 5 warm-up epochs, constant, square-root cool-down over the last 15 of 75 epochs. The optimiser
# steps of an epoch are counted from the training data and the launch when training starts.
scheduler: warmup_constant_sqrt_cooldown
scheduler_conf:
    warmup_epochs: 5        # linear warm-up from 0 to optim_conf.lr
    cooldown_epochs: 15     # square-root decay to 0 over the last epochs
    total_epochs: 75        # = max_epoch
""",
    batch_seconds=96,
    paper_gpus=32,
)

AVSR = PaperTask(
    name="avsr",
    rows=AVSR_ROWS,
    corpus=" (AVSR, LRS3 + VoxCeleb2 + AVSpeech)",
    notes=(
        "Data: data/<set>/wav.scp (16 kHz) and data/<set>/video.scp (96x96 grey mouth crops at 25 fps,",
        "one uint8 .npy (T, 96, 96) per clip): --train_data_path_and_name_and_type data/train/video.scp,video,video_npy",
        "Augmentation as in the paper: adaptive time masking, horizontal flips, random crops; no speed perturbation.",
    ),
    frontends=AUDIO_FRONTEND + VIDEO_FRONTEND_AND_FUSION,
    input_layer="null       # the fusion MLP already gives 768-d frames",
    model="model: avsr\n",
    model_conf="""\
    audio_dropout_prob: 0.0     # modality dropout (per utterance), off in the paper's recipe
    video_dropout_prob: 0.0
""",
    lr=0.001,
    scheduler="""\
# 5 warm-up epochs then cosine decay to 0 at epoch 75. The optimiser steps of an epoch are counted
# from the training data and the launch when training starts.
scheduler: warmup_cosine
scheduler_conf:
    warmup_epochs: 5        # linear warm-up from 0 to optim_conf.lr
    total_epochs: 75        # = max_epoch: the cosine reaches 0 there
""",
    batch_seconds=72,
    paper_gpus=64,
)

TASKS = (ASR, AVSR)


# -------------------------------------------------------------------------------------- the writer
def config_name(task: PaperTask, row: PaperRow) -> str:
    return f"train_{task.name}_conformer_{row.stem}.yaml"


LOWRANK_COMMENTS = {
    "lowrank": "W ≈ U·Vᵀ, rank round(α·min(m, n)) per linear layer (docs/lowrank_models.md)",
    "mhsa": "attention linears: α, [α first block, α last block] or null (dense)",
    "ffn": "feed-forward w_1 and w_2: the same forms",
    "init": "svd (paper Eq. 1) | kaiming | kaiming_traditional",
}


def commented(line: str, comment: str) -> str:
    """``line`` with ``# comment`` in the configs' comment column (28), or two spaces after a longer line."""
    return f"{line:<28}# {comment}" if len(line) < 27 else f"{line}  # {comment}"


def lowrank_block(row: PaperRow) -> str:
    """The ``lowrank:`` entry of ``encoder_conf`` and ``decoder_conf``, each key commented ("" for a dense row)."""
    if row.dense:
        return ""
    lines = yaml_body({"lowrank": {"mhsa": row.mhsa, "ffn": row.ffn, "init": row.init}}).splitlines()
    return "".join(commented(f"    {line}", LOWRANK_COMMENTS[line.split(":")[0].strip()]) + "\n" for line in lines)


CLASS_COMMENTS = {
    "conformer": "ESPnet's, full rank (lowrank_conformer + a lowrank: block factorizes it)",
    "lowrank_conformer": "ESPnet's Conformer with the linears of lowrank: factorized",
    "transformer": "ESPnet's, full rank (lowrank_transformer + a lowrank: block factorizes it)",
    "lowrank_transformer": "ESPnet's Transformer decoder with the linears of lowrank: factorized",
}


def config_header(task: PaperTask, row: PaperRow) -> List[str]:
    """The header of a generated config: the paper row, how it was made, and how to make one's own."""
    name = config_name(task, row)
    return [
        f"LR-SMS (Fernandez-Lopez et al.), {row.table}{task.corpus}: {row.row}.",
        f"Paper: {row.params_m} M parameters. Generated by {COMMAND}; check with",
        f"  python -m espnet_lrsms.bin.count_params conf/{task.name}/{name}",
        "Generated: never edit it (a test pins it to the generator). For a variant of your own, make an editable copy:",
        f"  {COPY_COMMAND} {task.name}/{row.stem} --out conf/tuning/my_{task.name}.yaml",
        *task.notes,
    ]


def config_body(task: PaperTask, row: PaperRow) -> str:
    samples = task.batch_seconds * 16000
    lowrank = lowrank_block(row)
    encoder = "conformer" if row.dense else "lowrank_conformer"
    decoder = "transformer" if row.dense else "lowrank_transformer"
    return "\n".join(
        [
            task.frontends,
            ENCODER.format(encoder=commented(f"encoder: {encoder}", CLASS_COMMENTS[encoder]),
                           input_layer=task.input_layer, lowrank=lowrank),
            DECODER.format(decoder=commented(f"decoder: {decoder}", CLASS_COMMENTS[decoder]), lowrank=lowrank),
            TRAINING.format(model=task.model, model_conf=task.model_conf, lr=task.lr, scheduler=task.scheduler,
                            frames=task.batch_seconds * 25, seconds=task.batch_seconds, samples=samples,
                            gpus=task.paper_gpus, task=task.name.upper()),
        ]
    )


def config_text(task: PaperTask, row: PaperRow) -> str:
    return config_yaml(config_body(task, row), config_header(task, row))


def manifest_text(task: PaperTask) -> str:
    lines = ["config\ttable\trow\tparams_m\n"]
    lines += [f"{config_name(task, row)}\t{row.table}\t{row.row}\t{row.params_m}\n" for row in task.rows]
    return "".join(lines)


def paper_config_files(tasks: Sequence[PaperTask] = TASKS) -> Dict[str, str]:
    """Every generated file, as its path under ``conf/`` → its text."""
    files = {}
    for task in tasks:
        for row in task.rows:
            files[f"{task.name}/{config_name(task, row)}"] = config_text(task, row)
        files[f"{task.name}/{MANIFEST}"] = manifest_text(task)
    return files


def write_paper_configs(conf_dir: Union[str, Path], tasks: Optional[Sequence[PaperTask]] = None) -> List[Path]:
    """Write the configs and manifests under ``conf_dir`` (``conf_dir/asr/…``, ``conf_dir/avsr/…``)."""
    files = paper_config_files(TASKS if tasks is None else tasks)
    return [write_text_atomic(Path(conf_dir) / name, text) for name, text in files.items()]


# ------------------------------------------------------------------------------ one's own copy
class PaperConfigError(ValueError):
    """A --copy source that names no paper row or YAML file, or an --out that exists; the message names it."""


def find_row(name: str) -> Tuple[PaperTask, PaperRow]:
    """The paper row ``name`` names: a generated file's name (``train_asr_conformer_lrsms.yaml``, with or
    without ``.yaml`` or a directory), ``<task>/<stem>`` (``asr/lrsms``), or a stem only one task has
    (``uniform_ffn_a0.25``)."""
    found = [
        (task, row)
        for task in TASKS
        for row in task.rows
        if name in (f"{task.name}/{row.stem}", row.stem)
        or Path(name).name in (config_name(task, row), Path(config_name(task, row)).stem)
    ]
    if len(found) == 1:
        return found[0]
    if found:
        choices = ", ".join(f"{task.name}/{row.stem}" for task, row in found)
        raise PaperConfigError(f"--copy {name}: more than one paper row has that name; say which: {choices}")
    rows = ", ".join(f"{task.name}/{row.stem}" for task in TASKS for row in task.rows)
    raise PaperConfigError(f"--copy {name}: no paper row of that name and no such YAML file; the rows: {rows}")


def copy_banner(origin: str, source: str, out: Union[str, Path]) -> List[str]:
    return [
        f"Your copy of {origin}: yours to edit (no test pins it). Made by",
        f"  {COPY_COMMAND} {source} --out {out}",
    ]


def copy_text(source: str, out: Union[str, Path]) -> str:
    """The text of an editable copy of ``source`` for ``out``: a paper row (:func:`find_row`; a generated file
    too, as long as it is the generator's text) or any other YAML file, as it is. No "never edit" line; a
    header naming what it was copied from and that it is the user's."""
    path = Path(source)
    try:
        task, row = find_row(source)
        if path.is_file() and path.read_text(encoding="utf-8") != config_text(task, row):
            raise PaperConfigError(f"{source} is not the generator's text")  # an edited file: copied as it is
    except PaperConfigError:
        if not path.is_file():
            raise
        return config_yaml(path.read_text(encoding="utf-8"), copy_banner(source, source, out))
    header = [
        *copy_banner(f"conf/{task.name}/{config_name(task, row)}", f"{task.name}/{row.stem}", out),
        f"It started as LR-SMS (Fernandez-Lopez et al.), {row.table}{task.corpus}: {row.row}",
        f"({row.params_m} M parameters in the paper). Train with it: ./run.sh --{task.name}_config {out}",
        f"Check its size with python -m espnet_lrsms.bin.count_params {out}",
        *task.notes,
    ]
    return config_yaml(config_body(task, row), header)


def copy_paper_config(source: str, out: Union[str, Path]) -> Path:
    """Write :func:`copy_text` to ``out`` (its directory made), never over an existing file; returns ``out``."""
    out = Path(out)
    if out.exists():
        raise PaperConfigError(
            f"--out {out}: the file exists and is not overwritten (remove it or choose another name)"
        )
    text = copy_text(source, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(out, text)


def read_paper_rows(directory: Union[str, Path]) -> Dict[str, dict]:
    """``paper_rows.tsv`` of a config directory: config file name → {table, row, params_m}."""
    manifest = Path(directory) / MANIFEST
    if not manifest.is_file():
        return {}
    with manifest.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return {r["config"]: {"table": r["table"], "row": r["row"], "params_m": float(r["params_m"])} for r in rows}


def paper_row(config: Union[str, Path]) -> Optional[dict]:
    """The paper row a config reproduces, from ``paper_rows.tsv`` beside it (None if not listed)."""
    config = Path(config).resolve()
    return read_paper_rows(config.parent).get(config.name)
