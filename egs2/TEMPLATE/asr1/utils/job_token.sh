# shellcheck shell=bash
# Sourced by the job runners (run_local.sh, slurm.sh): Kaldi's job variable (JOB in "JOB=1:4") is replaced
# only where it stands as a whole token, as in ESPnet's "asr_inference.JOB.log", "keys.JOB.scp", "split4/JOB";
# a path that merely contains the letters (".../xJOBy/exp", "exp_JOB_1") is left as it is.
#
#   replace_job_token <variable> <text> <token> <value>   sets <variable> to <text> with each whole <token>
#                                                          replaced by <value>
replace_job_token() {
    local -n _result=$1
    local text=$2 token=$3 value=$4 done=""
    local re="^(.*[^A-Za-z0-9_]|)${token}([^A-Za-z0-9_].*|)$"
    while [[ "$text" =~ $re ]]; do  # the last whole token first (.* is greedy); what follows it is done
        done="${value}${BASH_REMATCH[2]}${done}"
        text=${BASH_REMATCH[1]}
    done
    _result="${text}${done}"
}
