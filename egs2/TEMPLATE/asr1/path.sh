# Puts the repository's virtual environment (README: .venv) first on PATH when there is one, so the
# stages' python3 is the one with espnet_lrsms installed; with another environment active, it is used.
_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
if [[ -z "${VIRTUAL_ENV:-}" && -x "${_repo}/.venv/bin/python3" ]]; then
    export PATH="${_repo}/.venv/bin:${PATH}"
fi
export PYTHONUNBUFFERED=1
unset _repo
