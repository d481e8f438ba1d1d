#!/usr/bin/env bash
# shellcheck disable=SC2016  # the job script's lines are written as text, to expand when the job runs
# Runs a command as a SLURM job, with Kaldi's run.pl/slurm.pl calling convention (cmd.sh: train_cmd,
# cuda_cmd, decode_cmd), and waits for it:
#
#   slurm.sh [--gpu N] [--mem X] [--num_threads N] [--max_jobs_run N] [--time T] [--partition P]
#            [--num_nodes N] [--sbatch_opts "..."] [JOB=1:N] LOG CMD...
#
# JOB=a:b submits one job array (--array=a-b, "%N" with --max_jobs_run N); each task runs CMD with "JOB"
# replaced by its task id and writes LOG with "JOB" replaced the same way (the command, then its output, then
# its exit status, as run.pl's logs). --gpu N asks for --gres=gpu:N, --mem X for --mem=X, --num_threads N for
# --cpus-per-task=N; --sbatch_opts passes anything else to sbatch. The job script and SLURM's own output go to
# <dir of LOG>/q/. sbatch --wait blocks until every task ends; this script fails if any task failed and names
# the logs to read. The environment (PATH with the venv and utils/) travels with the job (sbatch's default).
set -uo pipefail
# shellcheck source=job_token.sh
. "$(dirname "${BASH_SOURCE[0]}")/job_token.sh"

sbatch_opts=() max_jobs="" name_opts=()
while [[ $# -gt 0 && "$1" == --* ]]; do
    [[ $# -ge 2 ]] || { echo "$0: option $1 needs a value" >&2; exit 1; }
    case "$1" in
        --gpu) [[ "$2" == 0 ]] || sbatch_opts+=("--gres=gpu:$2") ;;
        --mem) sbatch_opts+=("--mem=$2") ;;
        --num_threads) sbatch_opts+=("--cpus-per-task=$2") ;;
        --num_nodes) sbatch_opts+=("--nodes=$2") ;;
        --time) sbatch_opts+=("--time=$2") ;;
        --partition) sbatch_opts+=("--partition=$2") ;;
        --max_jobs_run|--max-jobs-run) max_jobs=$2 ;;
        --name) name_opts=("--job-name=$2") ;;
        --sbatch_opts) read -r -a extra <<< "$2"; sbatch_opts+=("${extra[@]}") ;;
        *) echo "$0: unknown option $1" >&2; exit 1 ;;
    esac
    shift 2
done
first="" last="" jobvar=""
if [[ $# -gt 0 && "$1" =~ ^([A-Za-z_]+)=([0-9]+):([0-9]+)$ ]]; then
    jobvar=${BASH_REMATCH[1]} first=${BASH_REMATCH[2]} last=${BASH_REMATCH[3]}
    shift
fi
if [[ $# -lt 2 ]]; then
    echo "usage: $0 [--gpu N] [--mem X] [--num_threads N] [--max_jobs_run N] [JOB=1:N] LOG CMD..." >&2
    exit 1
fi
log_pattern=$1; shift

# the job script: CMD quoted word by word (as run.pl does), the job variable replaced by the task id
marker=LRSMSJOBID
args=("$@") log_q=$log_pattern
if [[ -n "$jobvar" ]]; then
    args=()
    for arg in "$@"; do replace_job_token arg "$arg" "$jobvar" "$marker"; args+=("$arg"); done
    replace_job_token log_q "$log_pattern" "$jobvar" "$marker"
fi
cmd=$(printf '%q ' "${args[@]}")
log_q=$(printf '%q' "$log_q")
cmd=${cmd//$marker/'${JOBID}'}
log_q=${log_q//$marker/'${JOBID}'}

qdir="$(dirname "$log_pattern")/q"
base=$(basename "$log_pattern")
[[ -z "$jobvar" ]] || replace_job_token base "$base" "$jobvar" ""; base=${base%.log}; base=${base%.}
mkdir -p "$qdir"
script="${qdir}/${base}.sh"
{
    echo "#!/usr/bin/env bash"
    printf 'cd %q\n' "$PWD"
    echo "JOBID=\${SLURM_ARRAY_TASK_ID:-${first:-1}}"
    echo "log=${log_q}"
    echo 'mkdir -p "$(dirname "$log")"'
    printf 'printf "# %%s\\n# Started at %%s on %%s\\n" %q "$(date)" "$(hostname)" > "$log"\n' "$cmd"
    echo 'start=$SECONDS'
    echo "( ${cmd}) >> \"\$log\" 2>&1"
    echo 'status=$?'
    echo 'echo "# Accounting: time=$((SECONDS - start)) threads=${SLURM_CPUS_PER_TASK:-1}" >> "$log"'
    echo 'echo "# Ended (code $status) at $(date)" >> "$log"'
    echo 'exit $status'
} > "$script"
chmod +x "$script"

submit=(sbatch --parsable --wait --export=ALL "${name_opts[@]:---job-name=$base}" "${sbatch_opts[@]}")
if [[ -n "$jobvar" ]]; then
    submit+=("--array=${first}-${last}${max_jobs:+%${max_jobs}}" "--output=${qdir}/${base}.%a.out")
else
    submit+=("--output=${qdir}/${base}.out")
fi
"${submit[@]}" "$script" > "${qdir}/${base}.jobid"
status=$?
if [[ $status -ne 0 ]]; then
    if [[ -n "$jobvar" ]]; then
        replace_job_token logs "$log_pattern" "$jobvar" "*"
        echo "$0: SLURM job $(cat "${qdir}/${base}.jobid" 2>/dev/null) failed (exit $status); see ${logs} and ${qdir}/${base}.*.out" >&2
    else
        echo "$0: SLURM job $(cat "${qdir}/${base}.jobid" 2>/dev/null) failed (exit $status); see ${log_pattern} and ${qdir}/${base}.out" >&2
    fi
fi
exit $status
