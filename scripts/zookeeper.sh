#!/usr/bin/env bash
# A standalone ZooKeeper server for the distributed-lock tests and benchmarks.
#
#   scripts/zookeeper.sh start [--keep-data]
#                                 install Debian's `zookeeper` if missing, start a
#                                 server on 127.0.0.1:$ZK_PORT, wait until it
#                                 serves requests (fails if it cannot); the data
#                                 directory is wiped first unless --keep-data
#   scripts/zookeeper.sh stop     stop the server this script started (by its pid)
#   scripts/zookeeper.sh restart [--keep-data]
#                                 stop, then start (keeping its sessions and
#                                 nodes with --keep-data, as a crashed and
#                                 restarted server would)
#   scripts/zookeeper.sh pause    freeze the server (SIGSTOP to its pid): a GC
#                                 pause or a hung host, connections left open
#   scripts/zookeeper.sh resume   thaw it (SIGCONT)
#   scripts/zookeeper.sh pid      print the server's pid (exit 1 if not running)
#   scripts/zookeeper.sh status   say whether it runs; exit 0 if it serves requests
#
# Environment:
#   ZK_PORT            client port (default 2181); the server listens on 127.0.0.1 only
#   ZK_DIR             state directory: config, data, log, pid file
#                      (default ${TMPDIR:-/tmp}/lockutils-zookeeper-$UID-$ZK_PORT)
#   ZK_TICK_MS         tickTime (default 500: sessions may be as short as 1 s,
#                      which keeps the crash-release tests quick)
#   ZK_START_TIMEOUT   seconds to wait for the server to serve (default 60)
#   ZK_HEAP            JVM heap limit (default 256m)
#   ZK_JAVA_OPTS       extra JVM options for the server, space-separated.
#                      Unset: -Dznode.container.checkIntervalMs=3600000, so
#                      the server reaps empty container nodes (unheld lock
#                      nodes) hourly instead of every minute: a test that
#                      has just released a lock still finds its node. Set
#                      (even empty) it replaces that; say,
#                      -Dznode.container.checkIntervalMs=200 reaps them
#                      within a second.
#
# The server is the package's own jar run by `java` directly (no systemd, no
# init script). Every action reaches the server only through the pid recorded
# in $ZK_DIR, after checking that pid still runs this script's configuration.
set -euo pipefail

port="${ZK_PORT:-2181}"
dir="${ZK_DIR:-${TMPDIR:-/tmp}/lockutils-zookeeper-$(id -u)-$port}"
tick="${ZK_TICK_MS:-500}"
start_timeout="${ZK_START_TIMEOUT:-60}"
heap="${ZK_HEAP:-256m}"
read -r -a java_opts <<<"${ZK_JAVA_OPTS--Dznode.container.checkIntervalMs=3600000}"
pidfile="$dir/zookeeper.pid"
cfg="$dir/zoo.cfg"
log="$dir/zookeeper.log"
jar=/usr/share/java/zookeeper.jar

say() { echo "zookeeper.sh: $*" >&2; }

# Sends a four-letter word to the server; prints the answer (empty if none).
four() {
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "%s" "$2" >&3
    cat <&3
  ' _ "$port" "$1" 2>/dev/null || true
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; }

# The recorded pid, if that process is still our server.
our_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid="$(cat "$pidfile")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: the process must be java running our config.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$cfg" || return 1
  echo "$pid"
}

install_server() {
  [ -f "$jar" ] && command -v java >/dev/null && return 0
  say "installing Debian's zookeeper package"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q zookeeper >&2; then
    apt-get update -q >&2
    apt-get install -y -q zookeeper >&2
  fi
  [ -f "$jar" ] || { say "the zookeeper package did not provide $jar"; exit 1; }
}

start() {
  local keep_data="${1:-}"
  if pid="$(our_pid)"; then
    if four srvr | grep -q '^Mode:'; then
      say "already running (pid $pid) on 127.0.0.1:$port"
      return 0
    fi
    say "pid $pid is running but not serving; stopping it first"
    stop
  fi
  if port_open; then
    say "127.0.0.1:$port is already in use by another process; set ZK_PORT to a free port"
    exit 1
  fi
  install_server
  if [ "$keep_data" != "--keep-data" ]; then
    rm -rf "$dir/data"
  fi
  mkdir -p "$dir/data"
  cat >"$cfg" <<EOF
tickTime=$tick
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
maxSessionTimeout=120000
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=*
# A throwaway test server: skip the fsync per transaction. Each commit is
# still written to the log, so a restart with --keep-data sees every one.
forceSync=no
EOF
  # The jar's manifest names every dependency jar; slf4j-simple, if present,
  # sends the server's warnings to the log.
  local cp="$jar"
  [ -f /usr/share/java/slf4j-simple.jar ] && cp="$cp:/usr/share/java/slf4j-simple.jar"
  nohup java "-Xmx$heap" -XX:+UseSerialGC ${java_opts[@]+"${java_opts[@]}"} \
    -Dzookeeper.admin.enableServer=false \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$cp" org.apache.zookeeper.server.ZooKeeperServerMain "$cfg" \
    >"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$pidfile"
  local waited=0
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "the server exited during start-up; last lines of $log:"
      tail -n 20 "$log" >&2 || true
      rm -f "$pidfile"
      exit 1
    fi
    if four srvr | grep -q '^Mode:'; then
      say "serving on 127.0.0.1:$port (pid $pid, state in $dir)"
      return 0
    fi
    if [ "$waited" -ge $((start_timeout * 4)) ]; then
      say "not serving after ${start_timeout}s; stopping pid $pid. Last lines of $log:"
      tail -n 20 "$log" >&2 || true
      kill "$pid" 2>/dev/null || true
      rm -f "$pidfile"
      exit 1
    fi
    sleep 0.25
    waited=$((waited + 1))
  done
}

stop() {
  local pid
  if ! pid="$(our_pid)"; then
    rm -f "$pidfile"
    say "not running (no live server recorded in $pidfile)"
    return 0
  fi
  kill "$pid"
  # A paused server handles SIGTERM only once it runs again.
  kill -CONT "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "pid $pid ignored SIGTERM for 10s; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  say "stopped (pid $pid)"
}

signal() {
  local pid
  if ! pid="$(our_pid)"; then
    say "not running (no live server recorded in $pidfile)"
    exit 1
  fi
  kill "-$1" "$pid"
  say "sent SIG$1 to pid $pid"
}

print_pid() {
  local pid
  pid="$(our_pid)" || { say "not running"; exit 1; }
  echo "$pid"
}

status() {
  local pid
  if pid="$(our_pid)"; then
    local answer
    answer="$(four srvr)"
    if grep -q '^Mode:' <<<"$answer"; then
      echo "running: pid $pid, 127.0.0.1:$port, state in $dir"
      grep -E '^(Zookeeper version|Mode|Connections|Node count):' <<<"$answer" || true
      return 0
    fi
    echo "pid $pid is running but not serving on 127.0.0.1:$port"
    return 1
  fi
  echo "not running (127.0.0.1:$port)"
  return 1
}

keep_data_arg() {
  case "${1:-}" in
    "" | --keep-data) ;;
    *) echo "usage: $0 start|restart [--keep-data]" >&2; exit 2 ;;
  esac
}

case "${1:-}" in
  start) keep_data_arg "${2:-}"; start "${2:-}" ;;
  stop) stop ;;
  restart) keep_data_arg "${2:-}"; stop; start "${2:-}" ;;
  pause) signal STOP ;;
  resume) signal CONT ;;
  pid) print_pid ;;
  status) status ;;
  *) echo "usage: $0 start [--keep-data]|stop|restart [--keep-data]|pause|resume|pid|status" >&2; exit 2 ;;
esac
