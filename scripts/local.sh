# Shared by scripts/start and scripts/worker: where the local system keeps its state, and how a
# worker process is started and stopped. Sourced, not run.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${SOCKETSTARTER_STATE:-$ROOT/.local}
mkdir -p "$STATE" && STATE=$(cd "$STATE" && pwd)
# The state folder as the scripts print it: relative to the checkout when inside it.
STATE_SHOWN=${STATE#"$ROOT"/}
BIN_HUB=$ROOT/Hub.Front/bin/Release/net10.0
BIN_WORKER=$ROOT/Chat.Worker/bin/Release/net10.0
mkdir -p "$STATE/logs" "$STATE/pids"
# The ports scripts/start chose, for scripts/worker: a worker started later listens on the same
# footing (WORKER_PORT_BASE, and never on the hub's or the app's port). WORKER_PORT_BASE in the
# environment comes first.
load_ports() {
  if [[ -n "${WORKER_PORT_BASE:-}" ]]; then
    WORKER_PORT_BASE_GIVEN=1
  elif [[ -f "$STATE/ports.env" ]]; then
    # shellcheck source=/dev/null
    source "$STATE/ports.env"
  fi
}

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# choose_port SETTING DEFAULT [GIVEN] [WHAT]: prints the port to listen on (WHAT, shown with the
# port, defaults to SETTING). A port the setting gives
# (GIVEN) is used as is, and when it is taken, or is one another service of this system was given
# ($RESERVED_PORTS), stops naming the port and the setting. A default that is taken gives way to
# the next free port above it, said on stderr, so two copies of the system run side by side.
choose_port() {
  local setting=$1 default=$2 given=${3:-} what=${4:-$1} p
  if [[ -n "$given" ]]; then
    if [[ ! "$given" =~ ^[0-9]+$ ]] || (( given < 1 || given > 65535 )); then
      echo "$setting=$given is not a port (1-65535)" >&2; return 1
    fi
    if [[ " ${RESERVED_PORTS:-} " == *" $given "* ]] || ! port_is_free "$given"; then
      echo "Port $given ($what) is in use: stop what holds it, or set $setting to another port" >&2; return 1
    fi
    echo "$given"; return 0
  fi
  for (( p = default; p < default + 500 && p <= 65535; p++ )); do
    if [[ " ${RESERVED_PORTS:-} " != *" $p "* ]] && port_is_free "$p"; then
      (( p == default )) || echo "Port $default ($what) is in use; using $p instead (set $setting to choose)" >&2
      echo "$p"; return 0
    fi
  done
  echo "No free port from $default up ($what): set $setting to a free port" >&2; return 1
}

# worker_port N: worker N listens on WORKER_PORT_BASE + N (by default HUB_PORT + 100 + N): fixed
# when WORKER_PORT_BASE was set, else the next free port when that one is taken.
worker_port() {
  local n=$1
  local what="WORKER_PORT_BASE+$n, worker $n"
  if [[ "${WORKER_PORT_BASE_GIVEN:-0}" == 1 ]]; then
    choose_port WORKER_PORT_BASE "" "$((WORKER_PORT_BASE + n))" "$what"
  else
    choose_port WORKER_PORT_BASE "$((WORKER_PORT_BASE + n))" "" "$what"
  fi
}

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
  local n=$1 port log="$STATE/logs/worker-$1.log"
  [[ -n "${WORKER_PORT_BASE:-}" ]] || { echo "WORKER_PORT_BASE is not known: start the system with scripts/start" >&2; return 1; }
  port=$(worker_port "$n") || return 1
  echo "$port" > "$STATE/pids/worker-$n.port"
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
  rm -f "$pidfile" "$STATE/pids/$1.port"
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
