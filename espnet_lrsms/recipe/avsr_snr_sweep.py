"""AVSR stages 12 and 17: decode and score test sets, clean and with noise at given SNRs, in ESPnet's layout.

For a test set ``<data_root>/<set>`` and a condition:

- ``clean``: decode ``<data_root>/<set>`` into ``<exp>/<inference_tag>/<set>``;
- an SNR ``x`` (dB): first a noisy copy ``<data_root>/<set>_babble_snr<x>`` (or ``_noise_snr<x>`` with a
  noise file) made by :func:`espnet_lrsms.avsr.noise.mix_noise_into_data_dir` — babble = the sum of ``babble_speakers``
  other utterances of the same set — then decode it into ``<exp>/<inference_tag>_snr<x>/<set>``.

Each decode directory gets ESPnet's ``<n>best_recog/{text,token,token_int,score}`` and
``score_{wer,cer,ter}/{ref.trn,hyp.trn,result.txt}`` (TER, in the recipe's ``bpe.model`` pieces, when one is
given: the ASR recipe's stage-13 scorer, :mod:`espnet_lrsms.scoring.sclite`); ``<exp>/RESULTS.md`` gets a WER
table laid out as the paper's Table III (a row per model and set, a column per SNR, then clean) and ESPnet's
usual per-decode WER, CER and TER tables. Everything runs in one process (the model is loaded once per job;
``nj`` jobs forked from one interpreter that imported ESPnet share the utterances), because importing ESPnet costs more
than decoding a small test set.

A noisy copy is reused when its ``noise.json`` (written last) records the same settings; a decode
directory is written as ``<dir>.tmp`` and renamed, so an interrupted run leaves nothing finished-looking.
"""
import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from typeguard import typechecked

from espnet_lrsms.avsr.noise import NoiseMixError, mix_noise_into_data_dir
from espnet_lrsms.fileio import replaced_on_success, write_text_atomic
from espnet_lrsms.recipe.decode_jobs import DecodeJobsError, merge_outputs, split_keys
from espnet_lrsms.scoring.results import decode_tables_markdown, environments_markdown, read_sum_avg
from espnet_lrsms.scoring.sclite import ScoringText, score_decode_dir
from espnet_lrsms.workers import process_pool

logger = logging.getLogger(__name__)

CLEAN = "clean"
PAPER_SNRS = (-7.5, -2.5, 2.5, 7.5, 12.5)
SNR_SUFFIX = re.compile(r"^(?P<tag>.+)_snr(?P<snr>-?\d+(?:\.\d+)?)$")


class SweepError(RuntimeError):
    """A condition that cannot be decoded or scored; the message names the directory or file."""


@dataclass(frozen=True)
class NoiseSettings:
    """What is mixed into the test audio (recorded in each noisy data directory's ``noise.json``)."""

    snr: float
    noise_file: Optional[str] = None  # None: babble from the set's own utterances
    babble_speakers: int = 6
    seed: int = 0
    source: str = ""

    @property
    def kind(self) -> str:
        return "noise" if self.noise_file else "babble"

    def describe(self) -> str:
        if self.noise_file:
            return f"noise from {self.noise_file}"
        return f"babble: {self.babble_speakers} other utterances of the test set summed (seed {self.seed})"


def parse_condition(text: str) -> Optional[float]:
    """``"clean"`` → None, ``"-7.5"`` → -7.5; anything else is refused naming the value."""
    if text == CLEAN:
        return None
    try:
        return float(text)
    except ValueError:
        raise SweepError(f"condition {text!r}: expected 'clean' or an SNR in dB such as -7.5") from None


def snr_label(snr: float) -> str:
    return f"snr{snr:g}"


@typechecked
def make_noisy_set(data_dir: Path, data_root: Path, settings: NoiseSettings) -> Path:
    """``<data_root>/<set>_<kind>_snr<x>``: a noisy copy of ``data_dir`` (cached by ``noise.json``)."""
    out = data_root / f"{data_dir.name}_{settings.kind}_{snr_label(settings.snr)}"
    marker = out / "noise.json"
    wanted = json.dumps(asdict(settings), sort_keys=True)
    if marker.is_file() and marker.read_text(encoding="utf-8") == wanted and (out / "wav.scp").is_file():
        logger.info("%s: reusing the noisy copy (%s)", out, settings.describe())
        return out
    if out.exists():
        shutil.rmtree(out)
    noise = Path(settings.noise_file) if settings.noise_file else None
    try:
        mix_noise_into_data_dir(data_dir, out, settings.snr, noise, settings.babble_speakers, seed=settings.seed)
    except NoiseMixError as err:
        raise SweepError(f"mixing noise into {data_dir} at {settings.snr:g} dB failed: {err}") from None
    marker.write_text(wanted, encoding="utf-8")  # last: marks the copy complete
    return out


def _decode_job(job: Tuple[str, List[Tuple[str, str, str]], str, Dict]) -> None:
    """One decoding job (in a pool worker, which computes with its share of the cores: espnet_lrsms.workers)."""
    from espnet_lrsms.avsr.inference import inference

    output_dir, triples, key_file, kwargs = job
    inference(output_dir=output_dir, data_path_and_name_and_type=triples, key_file=key_file, **kwargs)


@typechecked
def decode_set(data_dir: Path, out_dir: Path, decode_kwargs: Dict, nj: int = 1, video_type: str = "video_npy",
               scoring_text: ScoringText = ScoringText()) -> None:
    """Decode ``data_dir`` (wav.scp + video.scp) into ``out_dir/<n>best_recog`` with ``nj`` jobs, then score it
    (WER, CER, and TER when ``scoring_text`` has the bpe model)."""
    for name in ("wav.scp", "video.scp", "text", "utt2spk"):
        if not (data_dir / name).is_file():
            raise SweepError(f"{data_dir / name}: no such file (run stage 1, or stage 17 for noisy sets)")
    with replaced_on_success(out_dir) as tmp:
        logdir = tmp / "logdir"
        try:
            nj = split_keys(data_dir / "wav.scp", nj, logdir)
        except DecodeJobsError as error:
            raise SweepError(str(error)) from None
        triples = [(str(data_dir / "wav.scp"), "speech", "sound"), (str(data_dir / "video.scp"), "video", video_type)]
        jobs = [
            (str(logdir / f"output.{j}"), triples, str(logdir / f"keys.{j}.scp"), decode_kwargs)
            for j in range(1, nj + 1)
        ]
        if nj == 1:
            _decode_job(jobs[0])
        else:  # the fork server imports ESPnet's inference once; the jobs are forked from it
            with process_pool(nj, preload=("espnet_lrsms.avsr.inference",)) as pool:
                list(pool.map(_decode_job, jobs))
        try:
            merge_outputs(logdir, nj, tmp)
        except DecodeJobsError as error:
            raise SweepError(f"decoding {data_dir}: {error}") from None
        _score_decode(data_dir, tmp, out_dir, scoring_text)


def _score_decode(data_dir: Path, tmp: Path, out_dir: Path, scoring_text: ScoringText) -> None:
    """score_{wer,cer[,ter]} of the merged 1-best in the decode directory being written (``tmp``)."""
    for metric, total in score_decode_dir(data_dir, tmp, scoring_text=scoring_text).items():
        logger.info("%s: %s %.1f %% (%d utterances)", out_dir, metric.upper(), total.percentages()[4], total.sentences)
    if (data_dir / "noise.json").is_file():
        shutil.copy2(data_dir / "noise.json", tmp / "noise.json")


@typechecked
def run_sweep(
    exp_dir: Path,
    inference_tag: str,
    data_root: Path,
    test_sets: Sequence[str],
    conditions: Sequence[str],
    decode_kwargs: Dict,
    noise_file: Optional[Path] = None,
    babble_speakers: int = 6,
    seed: int = 0,
    nj: int = 1,
    video_type: str = "video_npy",
    bpemodel: Optional[Path] = None,
) -> List[Path]:
    """Decode and score every (set, condition) (TER too with ``bpemodel``); returns the decode directories."""
    snrs = [parse_condition(c) for c in conditions]
    if noise_file is not None and not noise_file.is_file():
        raise SweepError(f"--noise_file {noise_file}: no such file")
    try:
        scoring_text = ScoringText.from_files(bpemodel=bpemodel)
    except FileNotFoundError as error:
        raise SweepError(str(error)) from None
    done = []
    for set_name in test_sets:
        clean_dir = data_root / set_name
        for snr in snrs:
            if snr is None:
                data_dir, out_dir = clean_dir, exp_dir / inference_tag / set_name
            else:
                settings = NoiseSettings(
                    snr=snr,
                    noise_file=str(noise_file.resolve()) if noise_file else None,
                    babble_speakers=babble_speakers,
                    seed=seed,
                    source=str(clean_dir.resolve()),
                )
                data_dir = make_noisy_set(clean_dir, data_root, settings)
                out_dir = exp_dir / f"{inference_tag}_{snr_label(snr)}" / set_name
            logger.info("decoding %s -> %s", data_dir, out_dir)
            decode_set(data_dir, out_dir, decode_kwargs, nj, video_type, scoring_text)
            done.append(out_dir)
    return done


# ----------------------------------------------------------------------------- RESULTS.md
def collect_wer(exp_dir: Path) -> Dict[Tuple[str, str], Dict[Optional[float], float]]:
    """``{(inference_tag, set): {snr or None (clean): WER %}}`` from ``<exp>/*/*/score_wer/result.txt``."""
    table: Dict[Tuple[str, str], Dict[Optional[float], float]] = {}
    for result in sorted(exp_dir.glob("*/*/score_wer/result.txt")):
        parsed = read_sum_avg(result)
        if parsed is None:
            continue
        decode_name, set_name = result.parent.parent.parent.name, result.parent.parent.name
        match = SNR_SUFFIX.match(decode_name)
        tag, snr = (match.group("tag"), float(match.group("snr"))) if match else (decode_name, None)
        table.setdefault((tag, set_name), {})[snr] = parsed[2][4]
    return table


def snr_table_markdown(exp_dir: Path) -> str:
    """The Table III layout: one row per (model, decoding, set); columns SNR ascending, then clean."""
    table = collect_wer(exp_dir)
    snrs = sorted({snr for row in table.values() for snr in row if snr is not None})
    descriptions = sorted(
        {NoiseSettings(**json.loads(p.read_text(encoding="utf-8"))).describe() for p in exp_dir.glob("*_snr*/*/noise.json")}
    )
    lines = [
        "### WER (%) by SNR of the added noise (paper Table III layout)\n",
        "noise: " + ("; ".join(descriptions) if descriptions else "none (clean decodes only)"),
        "",
        "|model|set|" + "".join(f"{snr:g} dB|" for snr in snrs) + "clean|",
        "|---|---|" + "---|" * (len(snrs) + 1),
    ]
    for (tag, set_name), row in sorted(table.items()):
        cells = [f"{row[snr]:.1f}" if snr in row else "–" for snr in snrs]
        cells.append(f"{row[None]:.1f}" if None in row else "–")
        lines.append(f"|{exp_dir.name} ({tag})|{set_name}|" + "|".join(cells) + "|")
    return "\n".join(lines) + "\n"


def write_results(exp_dir: Path) -> Path:
    """``<exp>/RESULTS.md``: the SNR table, then the per-decode tables (written to a temporary name first)."""
    text = f"# RESULTS\n{environments_markdown()}\n## {exp_dir}\n\n" + snr_table_markdown(exp_dir) + "\n" + decode_tables_markdown(exp_dir)
    return write_text_atomic(exp_dir / "RESULTS.md", text)
