"""The paper's training configs: ASR (LR-SMS Tables I and II, and the Fig. 4 pair with the traditional
Kaiming init) in ``conf/asr/`` and AVSR (Table III) in ``conf/avsr/``, each directory with its manifest
``paper_rows.tsv`` (config → the paper row it reproduces; read by ``espnet_lrsms.bin.count_params``
and the tests).

    python -m espnet_lrsms.bin.make_paper_configs [--conf_dir conf]

The configs are committed, and ``tests/recipe/test_config_generator.py`` checks that they are exactly what
this module writes: change a row or a shared block here, never a generated file. ``ROWS`` is the one
list of rows; the manifests are written from it. Every file is complete on its own, as ESPnet users
expect.

Architecture: a ResNet-18 1-D front end on the raw 16 kHz waveform, a 12-block 768-d Conformer
encoder, a 6-block Transformer decoder and CTC (243 M parameters at full rank with 5000 tokens). AVSR
(docs/avsr.md explains the choices) adds Auto-AVSR's visual front end (3-D conv stem + 2-D ResNet-18,
512-d per frame) and its fusion MLP (1024 → 8192 → 768, batch norm, ReLU) on the concatenated
front-end features, feeding the Conformer blocks directly (``input_layer: null``): 268.43 M
parameters at full rank (paper 268.5 M).
"""
from dataclasses import dataclass
from pathlib import Path
from textwrap import indent
from typing import Dict, List, Optional, Sequence, Tuple, Union

from espnet_lrsms.fileio import config_yaml, write_text_atomic, yaml_body

Spec = Union[None, float, List[float]]  # a lowrank: entry: None = dense, α, or [α_i, α_f]

COMMAND = "python -m espnet_lrsms.bin.make_paper_configs"
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
    time_mask:              # adaptive time masking of the waveform: one mask of < 0.4 s per second
        window: 6400
        stride: 16000
normalize: null             # the front end z-normalises each utterance itself
"""

VIDEO_FRONTEND_AND_FUSION = """
video_frontend: resnet2d    # 96x96 grey mouth crops -> 88x88 crop -> 3-D stem + ResNet-18 2-D -> 512-d per frame
video_frontend_conf:
    crop_size: 88           # random crop + horizontal flip in training, centre crop at test
    flip_prob: 0.5
    activation: swish
    time_mask:              # adaptive time masking of the frames: one mask of < 0.4 s per second
        window: 10
        stride: 25

fusion: mlp                 # concat(audio, video) 1024 -> 8192 -> BN -> ReLU -> 768, frame by frame
fusion_conf:
    hidden_units: 8192
    output_size: 768
    norm: batch_norm
"""

ENCODER = """\
encoder: {encoder}
encoder_conf:
    output_size: 768
    attention_heads: 12
    linear_units: 3072
    num_blocks: 12
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
    cnn_module_kernel: 31
{lowrank}"""

DECODER = """\
decoder: {decoder}
decoder_conf:
    attention_heads: 12
    linear_units: 3072
    num_blocks: 6
    dropout_rate: 0.1
    positional_dropout_rate: 0.1
    self_attention_dropout_rate: 0.1
    src_attention_dropout_rate: 0.1
{lowrank}"""

TRAINING = """\
{model}model_conf:
    ctc_weight: 0.1
    lsm_weight: 0.1
    length_normalized_loss: false
{model_conf}
optim: adamw
optim_conf:
    lr: {lr}
    betas: [0.9, 0.98]
    weight_decay: 0.03
{scheduler}max_epoch: 75
# At most {frames} frames ({seconds} s of 16 kHz audio = {samples:,} samples) per GPU, at any GPU count: training
# sets ESPnet's global batch_bins to this times the number of GPUs (the paper used {gpus} for {task}).
batch_type: length
batch_bins_per_gpu: {samples}
grad_clip: 5.0
best_model_criterion:
-   - valid
    - acc
    - max
keep_nbest_models: 10
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
    warmup_epochs: 5
    cooldown_epochs: 15
    total_epochs: 75
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
    warmup_epochs: 5
    total_epochs: 75
""",
    batch_seconds=72,
    paper_gpus=64,
)

TASKS = (ASR, AVSR)


# -------------------------------------------------------------------------------------- the writer
def config_name(task: PaperTask, row: PaperRow) -> str:
    return f"train_{task.name}_conformer_{row.stem}.yaml"


def lowrank_block(row: PaperRow) -> str:
    """The ``lowrank:`` entry of ``encoder_conf`` and ``decoder_conf`` ("" for a dense row)."""
    if row.dense:
        return ""
    return indent(yaml_body({"lowrank": {"mhsa": row.mhsa, "ffn": row.ffn, "init": row.init}}), "    ")


def config_text(task: PaperTask, row: PaperRow) -> str:
    path = f"conf/{task.name}/{config_name(task, row)}"
    header = [
        f"LR-SMS (Fernandez-Lopez et al.), {row.table}{task.corpus}: {row.row}.",
        f"Paper: {row.params_m} M parameters. Generated by {COMMAND}; check with",
        f"  python -m espnet_lrsms.bin.count_params {path}",
        *task.notes,
    ]
    samples = task.batch_seconds * 16000
    lowrank = lowrank_block(row)
    body = "\n".join(
        [
            task.frontends,
            ENCODER.format(encoder="conformer" if row.dense else "lowrank_conformer", input_layer=task.input_layer,
                           lowrank=lowrank),
            DECODER.format(decoder="transformer" if row.dense else "lowrank_transformer", lowrank=lowrank),
            TRAINING.format(model=task.model, model_conf=task.model_conf, lr=task.lr, scheduler=task.scheduler,
                            frames=task.batch_seconds * 25, seconds=task.batch_seconds, samples=samples,
                            gpus=task.paper_gpus, task=task.name.upper()),
        ]
    )
    return config_yaml(body, header)


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
