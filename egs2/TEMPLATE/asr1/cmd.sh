# shellcheck shell=bash disable=SC2034  # sourced by asr.sh and avsr.sh, which use these
# Job runners of the recipe's stages (ESPnet's cmd.sh; asr.sh and avsr.sh source ./cmd.sh of the recipe
# directory, and --train_cmd/--cuda_cmd/--decode_cmd override it). Each is a command name and its options,
# called with Kaldi's run.pl convention:
#     <cmd> [--gpu N] [--mem X] [--num_threads N] [--max_jobs_run N] [JOB=1:N] <log> <command...>
# train_cmd: CPU jobs; cuda_cmd: training (through ESPnet's launcher) and LM perplexity; decode_cmd: decoding.
# The runners are in egs2/TEMPLATE/asr1/utils/, which path.sh puts on PATH: name them without a directory.

# This machine (default): a JOB=1:N array runs in parallel (at most N at a time with --max_jobs_run N).
# The recipes link this file; replace a recipe's link with a copy to give it runners of its own.
train_cmd="run_local.sh"
cuda_cmd="run_local.sh"
decode_cmd="run_local.sh"

# SLURM: each call becomes one sbatch job (an array for JOB=1:N) that the stage waits for; the options
# after the name go into every call. utils/slurm.sh lists them (--partition, --time, --mem, --gpu, ...).
# One node per training job: several nodes train over SSH with --host (README).
# train_cmd="slurm.sh --partition cpu --mem 4G"
# cuda_cmd="slurm.sh --partition gpu --mem 32G --time 48:00:00"
# decode_cmd="slurm.sh --partition cpu --mem 8G --max_jobs_run 64"
