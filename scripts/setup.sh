#!/usr/bin/env bash
# Set up a fresh clone in .venv: the local CPU build of torch first (a plain `torch`
# requirement would pull a multi-GB CUDA build), then the package.
#   scripts/setup.sh         the app and the CLI
#   scripts/setup.sh --dev   + test tools (with the postgres and ray extras), the Label Studio
#                            server (its own venv, .venv-ls), Debian's chromium for the browser
#                            tests and PostgreSQL's server binaries for the PostgreSQL store tests
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0
if [ "${1:-}" = "--dev" ]; then DEV=1; fi
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# Debian packages the tests need: chromium (browser tests) and the PostgreSQL server binaries
# (the PostgreSQL store tests start their own server on a temporary directory). One apt call.
install_debian_packages() {
    local pkgs=()
    [ -x /usr/bin/chromium ] || pkgs+=(chromium)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || pkgs+=(postgresql)
    if [ "${#pkgs[@]}" = 0 ]; then return 0; fi
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
    else
        echo "note: the tests need Debian packages: sudo apt-get install -y ${pkgs[*]}" >&2
    fi
}

# wait_for PID NAME LOG: wait for a background step; on failure show its log and stop.
wait_for() {
    if ! wait "$1"; then
        echo "setup: $2 failed; its output:" >&2
        cat "$3" >&2
        exit 1
    fi
    cat "$3"
}

if [ "$DEV" = 1 ]; then
    # The Label Studio venv and Debian's chromium are independent of the app's venv:
    # install them meanwhile (the three are mostly download and unpack time).
    logs="$(mktemp -d)"
    scripts/labelstudio.sh install >"$logs/labelstudio.log" 2>&1 &
    ls_pid=$!
    install_debian_packages >"$logs/debian.log" 2>&1 &
    debian_pid=$!
    .venv/bin/python -m pip install -q "torch==2.13.0"
    .venv/bin/python -m pip install -q -e ".[dev]"
    wait_for "$ls_pid" "scripts/labelstudio.sh install" "$logs/labelstudio.log"
    wait_for "$debian_pid" "installing Debian packages (chromium, postgresql)" "$logs/debian.log"
    rm -rf "$logs"
else
    .venv/bin/python -m pip install -q "torch==2.13.0"
    .venv/bin/python -m pip install -q -e .
fi
echo "setup done: $(.venv/bin/python -c 'import curation; print("curation", curation.__version__)')"
