# Shared by scripts/start and scripts/worker: where the local system keeps its state, and how a
# worker process is started and stopped. Sourced, not run.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${SOCKETSTARTER_STATE:-$ROOT/.local}
BIN_HUB=$ROOT/Hub.Front/bin/Release/net10.0
BIN_WORKER=$ROOT/Chat.Worker/bin/Release/net10.0
WORKER_PORT_BASE=${WORKER_PORT_BASE:-5100}
mkdir -p "$STATE/logs" "$STATE/pids"

broker_uri() { cat "$STATE/broker-uri"; }
postgres_uri() { cat "$STATE/postgres-uri"; }

wait_ready() { # URL NAME LOGFILE
  for _ in $(seq 1 300); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "$2 did not become ready at $1; last lines of $3:" >&2
  tail -20 "$3" >&2
  return 1
}

start_worker() { # N
  local n=$1 port=$((WORKER_PORT_BASE + $1)) log="$STATE/logs/worker-$1.log"
  ConnectionStrings__rabbitmq="$(broker_uri)" ConnectionStrings__postgres="$(postgres_uri)" \
    setsid dotnet "$BIN_WORKER/Chat.Worker.dll" --contentRoot "$BIN_WORKER" --urls "http://127.0.0.1:$port" \
    >>"$log" 2>&1 </dev/null &
  echo $! > "$STATE/pids/worker-$n.pid"
  wait_ready "http://127.0.0.1:$port/health/ready" "worker $n" "$log"
  echo "worker $n running (pid $(cat "$STATE/pids/worker-$n.pid"), health http://127.0.0.1:$port/health/ready)"
}

stop_process() { # NAME [SIGNAL]
  local pidfile="$STATE/pids/$1.pid" signal=${2:-TERM}
  [[ -f "$pidfile" ]] || return 0
  local pid; pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$signal" "$pid"
    # SIGTERM drains in-flight events; give it the time the service allows itself.
    for _ in $(seq 1 350); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
}

install_apt() { # PACKAGE... : Debian packages, as root or through sudo
  local sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

client_dependencies() { # installs client/node_modules from the lock file when missing or stale
  local need="Node.js 20.19+ with npm is needed for the client (https://nodejs.org; Debian 12's own nodejs is 18, too old for Vite)"
  command -v npm >/dev/null 2>&1 || { echo "$need" >&2; return 1; }
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' \
    || { echo "$need; found $(node --version)" >&2; return 1; }
  if [[ ! -f "$ROOT/client/node_modules/.package-lock.json" || "$ROOT/client/package-lock.json" -nt "$ROOT/client/node_modules/.package-lock.json" ]]; then
    (cd "$ROOT/client" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
