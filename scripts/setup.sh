#!/usr/bin/env bash
# Set up a fresh clone in .venv: the local CPU build of torch first (a plain `torch`
# requirement would pull a multi-GB CUDA build), then the package.
#   scripts/setup.sh         the app and the CLI
#   scripts/setup.sh --dev   + test tools, the Label Studio server (its own venv, .venv-ls)
#                            and Debian's chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0
if [ "${1:-}" = "--dev" ]; then DEV=1; fi
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q "torch==2.13.0"
if [ "$DEV" = 1 ]; then
    .venv/bin/python -m pip install -q -e ".[dev]"
    scripts/labelstudio.sh install
    if [ ! -x /usr/bin/chromium ]; then
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        else
            echo "note: the browser tests need Debian's chromium: sudo apt-get install -y chromium" >&2
        fi
    fi
else
    .venv/bin/python -m pip install -q -e .
fi
echo "setup done: $(.venv/bin/python -c 'import curation; print("curation", curation.__version__)')"
