# shellcheck shell=bash disable=SC2034  # the options are read by name (${!name}: parse_options.sh, run_stage)
# The preamble and general options of asr.sh and avsr.sh, sourced by both (after `set -euo pipefail` and their
# `here`, before their own options): the command line for <exp>/run.sh, log(), path.sh, ESPnet's general options
# (stages, skips, GPUs, nodes, jobs, python) and the job runners of the recipe's cmd.sh. Each script's header lists
# the stages its --skip_* options leave out.
run_args=("$0" "$@")  # the command line, for <exp>/run.sh (a sourced file sees the script's arguments)
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) $*"; }
# shellcheck source=/dev/null
. "${here}/path.sh"

# General
stage=1
stop_stage=10000
skip_stages=""           # stage numbers to leave out, e.g. "5 10" (ESPnet's; each is logged)
skip_data_prep=false     # stages 1-5
skip_train=false         # the training data's stages and training (ESPnet's)
skip_eval=false          # stages 12-13 and 17 (decoding, scoring, this project's stage 17)
skip_packing=true        # stage 14 (ESPnet's default: no pack unless asked for)
skip_upload_hf=true      # stage 15
ngpu=1
num_nodes=1
host=""                  # comma-separated hosts for multi-node training over SSH (ESPnet's launch --host)
nj=4                     # parallel jobs for data prep
inference_nj=4           # parallel decoding jobs
gpu_inference=false
python=python3
# job runners: a command name and its options, split into words (ESPnet's launcher splits --cmd the same
# way), so a runner is named by its name on PATH (path.sh puts utils/ there), never by a path that may hold a
# space. The recipe's cmd.sh sets them (ESPnet's convention); --train_cmd etc. override it.
train_cmd=run_local.sh
cuda_cmd=run_local.sh
decode_cmd=run_local.sh
# shellcheck source=/dev/null
if [[ -f ./cmd.sh ]]; then . ./cmd.sh; fi
