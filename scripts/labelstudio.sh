#!/usr/bin/env bash
# Label Studio server for development and tests, in its own venv.
#
#   scripts/labelstudio.sh install
#       Create /work/main/.venv-ls (or $CURATION_LS_VENV) with label-studio==1.23.2 if it is
#       missing. Idempotent: a venv that already has that version is left alone. Label Studio
#       lives apart from the app's venv because it pins pyarrow<25, pytz<2023 and
#       label-studio-sdk==2.1.2, which would downgrade the app's packages.
#
#   scripts/labelstudio.sh start --port P --data-dir DIR --username EMAIL --password PW --token TOKEN
#       `exec` the server on 127.0.0.1:P, offline and non-interactive, so the PID of this script
#       is the server's PID (stop it with `kill PID`). Options fall back to the environment:
#       LABEL_STUDIO_PORT, LABEL_STUDIO_DATA_DIR, LABEL_STUDIO_USERNAME, LABEL_STUDIO_PASSWORD,
#       LABEL_STUDIO_USER_TOKEN. Legacy tokens are enabled (they must be on at the *first*
#       start of a data dir or `Authorization: Token ...` answers 401). Ready when
#       GET http://127.0.0.1:P/health answers {"status": "UP"} (~23 s on a fresh data dir).
#
#   scripts/labelstudio.sh python
#       Print the path of the venv's python (empty exit 1 if not installed).
set -euo pipefail

LS_VERSION="1.23.2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CURATION_LS_VENV:-$ROOT/.venv-ls}"
PYTHON_BIN="${PYTHON:-python3}"

die() { echo "labelstudio.sh: $*" >&2; exit 2; }

installed_version() {
  [ -x "$VENV/bin/python" ] || return 1
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("label-studio"))' 2>/dev/null
}

cmd_install() {
  if [ "$(installed_version || true)" = "$LS_VERSION" ] && [ -x "$VENV/bin/label-studio" ]; then
    echo "label-studio $LS_VERSION already installed in $VENV"
    return 0
  fi
  echo "installing label-studio $LS_VERSION into $VENV (~60 s, ~1 GB)"
  [ -x "$VENV/bin/python" ] || "$PYTHON_BIN" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "label-studio==$LS_VERSION"
  [ "$(installed_version)" = "$LS_VERSION" ] || die "install finished but label-studio $LS_VERSION is not importable in $VENV"
  echo "label-studio $LS_VERSION installed in $VENV"
}

cmd_start() {
  local port="${LABEL_STUDIO_PORT:-8080}" data_dir="${LABEL_STUDIO_DATA_DIR:-}"
  local username="${LABEL_STUDIO_USERNAME:-}" password="${LABEL_STUDIO_PASSWORD:-}"
  local token="${LABEL_STUDIO_USER_TOKEN:-}"
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) port="$2"; shift 2 ;;
      --data-dir) data_dir="$2"; shift 2 ;;
      --username) username="$2"; shift 2 ;;
      --password) password="$2"; shift 2 ;;
      --token) token="$2"; shift 2 ;;
      *) die "start: unknown option $1 (see the header of $0)" ;;
    esac
  done
  [ -n "$data_dir" ] || die "start: pass --data-dir DIR or set LABEL_STUDIO_DATA_DIR"
  [ -n "$username" ] || die "start: pass --username EMAIL or set LABEL_STUDIO_USERNAME"
  [ -n "$password" ] || die "start: pass --password PW or set LABEL_STUDIO_PASSWORD"
  [ -n "$token" ] || die "start: pass --token TOKEN or set LABEL_STUDIO_USER_TOKEN"
  [ -x "$VENV/bin/label-studio" ] || die "label-studio is not installed in $VENV; run: $0 install"
  mkdir -p "$data_dir"
  export LABEL_STUDIO_USERNAME="$username" LABEL_STUDIO_PASSWORD="$password"
  export LABEL_STUDIO_USER_TOKEN="$token" LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true
  export LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false
  export LABEL_STUDIO_BASE_DATA_DIR="$data_dir"
  # The server must not touch the app's store or pick up the caller's Label Studio client settings.
  unset LABEL_STUDIO_URL LABEL_STUDIO_API_KEY
  exec "$VENV/bin/label-studio" start --no-browser --host 127.0.0.1 --internal-host 127.0.0.1 \
    --port "$port" --data-dir "$data_dir"
}

case "${1:-}" in
  install) shift; cmd_install "$@" ;;
  start) shift; cmd_start "$@" ;;
  python)
    [ -x "$VENV/bin/python" ] || exit 1
    echo "$VENV/bin/python" ;;
  *) echo "usage: $0 install | start --port P --data-dir DIR --username EMAIL --password PW --token TOKEN | python" >&2; exit 2 ;;
esac
