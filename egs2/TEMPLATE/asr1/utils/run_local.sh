#!/usr/bin/env bash
# Runs a command on this machine with Kaldi's run.pl calling convention, which ESPnet's launcher
# (python -m espnet2.bin.launch --cmd ...) and the recipes use (cmd.sh):
#
#   run_local.sh [--gpu N] [--num_threads N] [--mem X] [--max_jobs_run N] [JOB=1:N] LOG CMD...
#
# With JOB=a:b the command runs once per job, each whole word "JOB" in LOG and CMD replaced by the job number
# (job_token.sh: "log.JOB.txt" and "split/JOB" are, ".../xJOBy/exp" is not), in parallel: all at once, or at most N at a time with --max_jobs_run N (--max-jobs-run, as run.pl spells it).
# It fails if any job fails and names that job's log. Each log starts with the command and ends with its
# exit status. The other resource options are accepted and ignored (one machine).
#
# Jobs that run side by side share the cores: each gets OMP_NUM_THREADS=max(1, cores / jobs at once) (torch's
# intra-op threads), unless OMP_NUM_THREADS is set already (yours holds). ESPnet's path.sh exports 1 for every
# stage; here a single job (training) keeps every core, and two decoding jobs on two cores do not start four
# threads (which ran them 6.4x slower: OpenMP threads spin while they wait for a core).
set -uo pipefail
# shellcheck source=job_token.sh
. "$(dirname "${BASH_SOURCE[0]}")/job_token.sh"

max_jobs=0
while [[ $# -gt 0 && "$1" == --* ]]; do
    case "$1" in
        --max_jobs_run|--max-jobs-run)
            [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "$0: $1 takes a whole number, got '${2:-}'" >&2; exit 1; }
            max_jobs=$2; shift 2 ;;
        --gpu|--num_threads|--mem|--num_nodes) shift 2 ;;
        *) echo "$0: unknown option $1" >&2; exit 1 ;;
    esac
done
first=1 last=1 jobvar=""
if [[ $# -gt 0 && "$1" =~ ^([A-Za-z_]+)=([0-9]+):([0-9]+)$ ]]; then
    jobvar=${BASH_REMATCH[1]} first=${BASH_REMATCH[2]} last=${BASH_REMATCH[3]}
    shift
fi
if [[ $# -lt 2 ]]; then
    echo "usage: $0 [--gpu N] [--max_jobs_run N] [JOB=1:N] LOG CMD..." >&2
    exit 1
fi
log_pattern=$1; shift

log_of() {
    local log=$log_pattern
    [[ -z "$jobvar" ]] || replace_job_token log "$log_pattern" "$jobvar" "$1"
    echo "$log"
}

run_one() {
    local job=$1; shift
    local log args=() arg
    log=$(log_of "$job")
    for arg in "$@"; do
        [[ -z "$jobvar" ]] || replace_job_token arg "$arg" "$jobvar" "$job"
        args+=("$arg")
    done
    local cmd
    cmd=$(printf '%q ' "${args[@]}")  # quote each argument, as run.pl does
    mkdir -p "$(dirname "$log")"
    {
        echo "# ${cmd}"
        echo "# Started at $(date)"
    } > "$log"
    local start=$SECONDS
    bash -c "$cmd" >> "$log" 2>&1
    local status=$?
    echo "# Accounting: time=$((SECONDS - start)) threads=${threads}" >> "$log"
    echo "# Ended (code $status) at $(date)" >> "$log"
    return $status
}

at_once=$((last - first + 1))
[[ $max_jobs -gt 0 && $max_jobs -lt $at_once ]] && at_once=$max_jobs
if [[ -z "${OMP_NUM_THREADS:-}" && $at_once -gt 1 ]]; then
    cores=$(nproc)
    export OMP_NUM_THREADS=$(( cores / at_once > 1 ? cores / at_once : 1 ))
fi
threads=${OMP_NUM_THREADS:-$(nproc)}

declare -A pid_of_job=()
for ((job = first; job <= last; job++)); do
    if [[ $max_jobs -gt 0 ]]; then
        while [[ $(jobs -rp | wc -l) -ge $max_jobs ]]; do
            wait -n 2>/dev/null || true  # a slot is free; each job's own status is read below
        done
    fi
    run_one "$job" "$@" &
    pid_of_job[$job]=$!
done
failed=0
for ((job = first; job <= last; job++)); do
    if ! wait "${pid_of_job[$job]}"; then
        echo "$0: job $job failed, see $(log_of "$job")" >&2
        failed=1
    fi
done
exit $failed
