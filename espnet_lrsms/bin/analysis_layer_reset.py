"""Layer-reset ablation: WER after resetting each block of a trained model; ambient vs critical.

    python -m espnet_lrsms.bin.analysis_layer_reset --exp_dir exp/asr_x --data_dir data/dev_clean \\
        --decode_config conf/decode_asr.yaml [--checkpoint valid.acc.ave.pth] [--modes reinit rerandom] \\
        [--granularity block|module] [--submodel encoder|decoder] [--threshold 1.0] \\
        [--threshold_type absolute|relative] [--max_utts N] [--nj 4]

Run it from the recipe directory (the experiment's config.yaml names the BPE model relative to it).
For each block b (or each module of each block), the weights under <submodel>.<stack>.b are put back
to their initial values (reinit: <exp_dir>/0epoch.pth) or to fresh random ones (rerandom: a new model
of the same config drawn with --seed, by default the config's training seed + 1: the training seed
itself would draw the initial weights again), the data set is decoded, and the block is ambient when the WER rises by
at most --threshold (WER points, or a fraction of the trained model's WER with --threshold_type
relative), critical otherwise. Factorized layers are reset through their factors u, vt.

Writes to --output_dir (default <exp_dir>/analysis/layer_reset_<data set>):
  layer_reset.csv      submodel, block, module, mode, wer, wer_increase, errors, words, class
                       (first row: the trained model, mode "none")
  layer_reset.png      WER per reset block, bars per mode coloured ambient / critical
  hyps/<variant>/text  the hypotheses of every decode
  rerandom_seed<k>.pth the random weights used by rerandom
"""
import argparse
import inspect
import logging
import sys
from pathlib import Path

import yaml
from tqdm import tqdm

from espnet_lrsms.analysis.layer_reset import (
    CSV_FIELDS,
    GRANULARITIES,
    MODES,
    THRESHOLD_TYPES,
    DecodeSetup,
    ablation_rows,
    ambient_blocks,
    plot_ablation,
    rerandom_seed,
    reset_targets,
    run_ablation,
    write_random_init,
)
from espnet_lrsms.analysis.numerical_signatures import INITIAL_CHECKPOINT
from espnet_lrsms.analysis.weights import load_state_dict, write_rows_csv
from espnet_lrsms.fileio import write_text_atomic
from espnet_lrsms.nets.espnet_names import BLOCK_STACKS
from espnet_lrsms.scoring.sclite import read_text
from espnet_lrsms.workers import usable_cores

# decoding-config keys that belong to ESPnet's inference loop, not to Speech2Text
INFERENCE_LOOP_KEYS = {"batch_size", "ngpu", "num_workers", "seed", "dtype", "log_level"}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, required=True, help="ESPnet experiment directory (config.yaml, 0epoch.pth)")
    parser.add_argument("--checkpoint", default="valid.acc.ave.pth", help="trained model: path or name in --exp_dir")
    parser.add_argument("--data_dir", type=Path, required=True, help="data directory with wav.scp and text")
    parser.add_argument("--decode_config", type=Path, default=None, help="decoding YAML (asr_inference's --config)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--granularity", choices=GRANULARITIES, default="block", help="reset whole blocks or each module")
    parser.add_argument("--submodel", choices=sorted(BLOCK_STACKS), default="encoder")
    parser.add_argument("--threshold", type=float, default=1.0, help="largest WER increase of an ambient block")
    parser.add_argument("--threshold_type", choices=THRESHOLD_TYPES, default="absolute",
                        help="absolute: WER points; relative: fraction of the trained model's WER")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the rerandom weights (default: the seed in the experiment's config.yaml + 1)")
    parser.add_argument("--max_utts", type=int, default=0, help="decode only the first N utterances (0: all)")
    parser.add_argument("--nj", type=int, default=1, help="parallel decoding processes")
    parser.add_argument("--output_dir", type=Path, default=None)
    return parser


def read_decode_config(path: Path) -> dict:
    """Speech2Text keyword arguments from an ``asr_inference --config`` YAML; unknown keys are errors."""
    from espnet2.bin.asr_inference import Speech2Text

    conf = yaml.safe_load(path.read_text()) or {}
    if not isinstance(conf, dict):
        raise ValueError(f"{path}: expected a mapping of decoding options")
    allowed = set(inspect.signature(Speech2Text.__init__).parameters) - {"self", "asr_train_config", "asr_model_file", "device"}
    unknown = sorted(set(conf) - allowed - INFERENCE_LOOP_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown decoding option(s) {unknown}")
    return {k: v for k, v in conf.items() if k in allowed}


def resolve(exp_dir: Path, name: str) -> Path:
    path = Path(name)
    return path if path.is_file() or path.is_absolute() else exp_dir / name


def main(cmd=None) -> int:
    args = get_parser().parse_args(cmd)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    exp_dir = args.exp_dir
    config, checkpoint = exp_dir / "config.yaml", resolve(exp_dir, args.checkpoint)
    for path, what in ((config, "experiment config"), (checkpoint, "--checkpoint"),
                       (args.data_dir / "wav.scp", "--data_dir"), (args.data_dir / "text", "--data_dir")):
        if not path.is_file():
            raise SystemExit(f"layer_reset: {what}: no such file {path}")
    if args.nj < 1 or args.max_utts < 0:
        raise SystemExit("layer_reset: --nj must be ≥ 1 and --max_utts ≥ 0")
    out = args.output_dir or exp_dir / "analysis" / f"layer_reset_{args.data_dir.name}"
    try:
        decode_conf = read_decode_config(args.decode_config) if args.decode_config else {}
        trained = load_state_dict(checkpoint)
        targets = reset_targets(trained, args.submodel, args.granularity)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"layer_reset: {e}")
    sources = []
    if "reinit" in args.modes:
        initial = exp_dir / INITIAL_CHECKPOINT
        if not initial.is_file():
            raise SystemExit(
                f"layer_reset: reinit needs the initial weights {initial}, which espnet_lrsms.bin.asr_train "
                "writes before the first update; retrain with it, or use --modes rerandom"
            )
        sources.append(("reinit", initial))
    if "rerandom" in args.modes:
        try:
            seed, trained_seed = rerandom_seed(config, args.seed)
        except ValueError as e:
            raise SystemExit(f"layer_reset: {e}")
        same = " (the training seed: these are the initial weights, rerandom = reinit)" if seed == trained_seed else ""
        print(f"rerandom: random weights drawn with seed {seed}; the experiment trained with seed {trained_seed}{same}")
        sources.append(("rerandom", write_random_init(config, seed, out / f"rerandom_seed{seed}.pth")))

    refs = read_text(args.data_dir / "text")
    uttids = sorted(refs)[: args.max_utts or None]
    refs = {u: refs[u] for u in uttids}
    setup = DecodeSetup(
        config=config, model=checkpoint, sources=tuple(sources), wav_scp=args.data_dir / "wav.scp",
        uttids=tuple(uttids), decode_conf=tuple(sorted(decode_conf.items())),
        threads=max(1, usable_cores() // args.nj),  # the nj workers share the cores
    )
    print(f"layer reset of {len(targets)} {args.submodel} {args.granularity}s × {args.modes}: "
          f"{1 + len(targets) * len(args.modes)} decodes of {len(uttids)} utterances ({args.data_dir}), nj={args.nj}")
    baseline, variants = run_ablation(setup, targets, args.modes, args.nj, progress=tqdm)
    rows = ablation_rows(refs, baseline, variants, args.threshold, args.threshold_type)

    for name, hyps in [("trained", baseline)] + [(f"{m}_{t.name}", h) for (m, t), h in variants.items()]:
        hyp_dir = out / "hyps" / name
        hyp_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(hyp_dir / "text", "".join(f"{u} {hyps.get(u, '')}\n" for u in uttids))
    csv_path = write_rows_csv(rows, CSV_FIELDS, out / "layer_reset.csv")
    unit = "%" if args.threshold_type == "absolute" else "× WER"
    title = (f"{exp_dir.resolve().name} ({checkpoint.name}) on {args.data_dir.name}: "
             f"ambient = WER rise ≤ {args.threshold:g} {'points' if unit == '%' else 'of the trained WER'}")
    png_path = plot_ablation(rows, args.threshold, args.threshold_type, out / "layer_reset.png", title)

    base = rows[0]
    print(f"trained model: WER {base['wer']:.2f} % ({base['errors']} errors / {base['words']} words)")
    print(f"{'mode':<9} {'reset':<28} {'WER %':>7} {'rise':>7}  class")
    for r in rows[1:]:
        label = f"{r['submodel']}.{r['block']}" + ("" if r["module"] == "(all)" else f".{r['module']}")
        print(f"{r['mode']:<9} {label:<28} {r['wer']:>7.2f} {r['wer_increase']:>+7.2f}  {r['class']}")
    ambient_by_mode = {mode: ambient_blocks(rows, mode) for mode in args.modes}
    if args.granularity == "block":
        for mode, ambient in ambient_by_mode.items():
            print(f"ambient {args.submodel} blocks ({mode}), most ambient first: {ambient}")
    if args.granularity == "block" and args.submodel == "encoder":
        ambient = ambient_by_mode[args.modes[0]]
        if ambient:
            print("for ambient-targeted dropout (docs/analysis.md), e.g. the 2 most ambient blocks:")
            print(f"  encoder_conf:\n    unit_dropout:\n      blocks: {ambient[:2]}\n      rate: 0.5")
    print(f"wrote {csv_path}, {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
