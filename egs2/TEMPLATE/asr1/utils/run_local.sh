#!/usr/bin/env bash
# Runs a command on this machine with Kaldi's run.pl calling convention, which ESPnet's launcher
# (python -m espnet2.bin.launch --cmd ...) and asr.sh use:
#
#   run_local.sh [--gpu N] [--num_threads N] [--mem X] [--max_jobs_run N] [JOB=1:N] LOG CMD...
#
# Resource options are accepted and ignored (one machine). With JOB=a:b the command runs once per
# job in parallel, "JOB" in LOG and CMD replaced by the job number; it fails if any job fails and
# names that job's log. Each log starts with the command and ends with its exit status.
set -uo pipefail

while [[ $# -gt 0 && "$1" == --* ]]; do
    case "$1" in
        --gpu|--num_threads|--mem|--max_jobs_run|--max-jobs-run|--num_nodes) shift 2 ;;
        *) echo "$0: unknown option $1" >&2; exit 1 ;;
    esac
done
first=1 last=1 jobvar=""
if [[ $# -gt 0 && "$1" =~ ^([A-Za-z_]+)=([0-9]+):([0-9]+)$ ]]; then
    jobvar=${BASH_REMATCH[1]} first=${BASH_REMATCH[2]} last=${BASH_REMATCH[3]}
    shift
fi
if [[ $# -lt 2 ]]; then
    echo "usage: $0 [--gpu N] [JOB=1:N] LOG CMD..." >&2
    exit 1
fi
log_pattern=$1; shift

run_one() {
    local job=$1; shift
    local log=$log_pattern
    local args=("$@")
    if [[ -n "$jobvar" ]]; then
        log=${log//$jobvar/$job}
        args=("${args[@]//$jobvar/$job}")
    fi
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
    echo "# Accounting: time=$((SECONDS - start)) threads=1" >> "$log"
    echo "# Ended (code $status) at $(date)" >> "$log"
    return $status
}

pids=()
for ((job = first; job <= last; job++)); do
    run_one "$job" "$@" &
    pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        job=$((first + i))
        log=$log_pattern; [[ -n "$jobvar" ]] && log=${log//$jobvar/$job}
        echo "$0: job $job failed, see $log" >&2
        failed=1
    fi
done
exit $failed
