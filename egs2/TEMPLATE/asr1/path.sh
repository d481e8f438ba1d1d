# Puts the repository's virtual environment (README: .venv) first on PATH when there is one, so the
# stages' python3 is the one with espnet_lrsms installed; with another environment active, it is used.
# The recipe's job runners (utils/run_local.sh, utils/slurm.sh) go on PATH too, so cmd.sh names them without
# a directory: a command string (--cmd of ESPnet's launcher, ${train_cmd} in the stages) is split into words,
# and a checkout path with a space in it would split there.
_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH="${_here}/utils:${PATH}"
_repo=$(cd "${_here}/../../.." && pwd)
if [[ -z "${VIRTUAL_ENV:-}" && -x "${_repo}/.venv/bin/python3" ]]; then
    export PATH="${_repo}/.venv/bin:${PATH}"
fi
export PYTHONUNBUFFERED=1
unset _repo _here
