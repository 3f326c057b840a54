#!/usr/bin/env bash
# A throwaway PostgreSQL server for the PostgreSQL lock tests and benchmarks.
#
#   scripts/postgres.sh start    install Debian's `postgresql` if missing, initdb a
#                                fresh cluster, start it on 127.0.0.1:$PG_PORT with
#                                TLS (a self-signed certificate), wait until it
#                                accepts connections (fails if it cannot), and
#                                print the test URL
#   scripts/postgres.sh stop     stop the server this script started (by its pid)
#   scripts/postgres.sh status   say whether it runs; exit 0 if it accepts connections
#   scripts/postgres.sh url      print the test URL (for LOCKUTILS_TEST_POSTGRES_URL)
#
# Environment:
#   PG_PORT            port (default 5433); the server listens on 127.0.0.1 only
#   PG_DIR             state directory: cluster, socket, certificate, log
#                      (default ${TMPDIR:-/tmp}/lockutils-postgres-$UID-$PG_PORT)
#   PG_START_TIMEOUT   seconds to wait for the server to accept connections (default 60)
#
# Roles and databases created at every start:
#   lockutils      / password lockutils      owner of database `lockutils`: the tests' role
#   lockutils_min  / password lockutils_min  LOGIN and CONNECT only: the least a lock user needs
# The server runs as the invoking user, or, when run as root, as the system
# user `lockutils-pg` (created if missing): PostgreSQL refuses to run as root.
set -euo pipefail

port="${PG_PORT:-5433}"
dir="${PG_DIR:-${TMPDIR:-/tmp}/lockutils-postgres-$(id -u)-$port}"
start_timeout="${PG_START_TIMEOUT:-60}"
data="$dir/data"
log="$dir/postgres.log"
pidfile="$dir/postgres.pid"
run_user=lockutils-pg

say() { echo "postgres.sh: $*" >&2; }

url() { echo "postgresql://lockutils:lockutils@127.0.0.1:$port/lockutils"; }

bindir() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$d" ] && [ -x "$d/postgres" ] && echo "$d"
}

install_server() {
  bindir >/dev/null && return 0
  say "installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q postgresql >&2; then
    apt-get update -q >&2
    apt-get install -y -q postgresql >&2
  fi
  bindir >/dev/null || { say "the postgresql package did not provide /usr/lib/postgresql/*/bin/postgres"; exit 1; }
}

# Runs a command as the server's user.
as_server() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$run_user" -- "$@"
  else
    "$@"
  fi
}

ensure_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  id "$run_user" >/dev/null 2>&1 && return 0
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$run_user"
}

# The recorded pid, if that process is still our postmaster.
our_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid="$(cat "$pidfile")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: the process must be postgres on our data dir.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$data" || return 1
  echo "$pid"
}

ready() { "$(bindir)/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2 >/dev/null 2>&1; }

psql_super() { as_server "$(bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres "$@"; }

start() {
  install_server
  local bin
  bin="$(bindir)"
  if pid="$(our_pid)"; then
    if ready; then
      say "already running (pid $pid) on 127.0.0.1:$port"
      url
      return 0
    fi
    say "pid $pid is running but not accepting connections; stopping it first"
    stop
  fi
  if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
    say "127.0.0.1:$port is already in use by another process; set PG_PORT to a free port"
    exit 1
  fi
  ensure_user
  rm -rf "$dir"
  mkdir -p "$dir"
  chmod 700 "$dir"
  [ "$(id -u)" -eq 0 ] && chown "$run_user" "$dir"
  as_server "$bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || { say "initdb failed:"; cat "$dir/initdb.log" >&2; exit 1; }
  # A throwaway CA and a server certificate it signs, for the TLS tests.
  # The certificate names localhost only (not 127.0.0.1), so that a test can
  # tell verify-ca (name not checked) from verify-full (name checked).
  as_server openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=lockutils test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" >/dev/null 2>&1
  as_server openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$data/server.key" -out "$dir/server.csr" >/dev/null 2>&1
  printf '%s\n' "subjectAltName=DNS:localhost" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$dir/server.ext"
  as_server openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 30 -extfile "$dir/server.ext" -out "$data/server.crt" >/dev/null 2>&1 ||
    { say "cannot make the test server's certificate"; exit 1; }
  as_server chmod 600 "$data/server.key" "$dir/ca.key"
  chmod 644 "$dir/ca.crt"
  chmod 711 "$dir"
  cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 300
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
# A throwaway test server: no durability needed.
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  local -a run=("$bin/postgres" -D "$data")
  [ "$(id -u)" -eq 0 ] && run=(runuser -u "$run_user" -- "${run[@]}")
  nohup "${run[@]}" >"$log" 2>&1 </dev/null &
  local launcher=$! waited=0 pid=""
  while :; do
    if [ -z "$pid" ] && [ -s "$data/postmaster.pid" ]; then
      pid="$(head -n 1 "$data/postmaster.pid")"
      echo "$pid" >"$pidfile"
    fi
    if [ -n "$pid" ] && ready; then
      break
    fi
    if ! kill -0 "$launcher" 2>/dev/null; then
      say "the server exited during start-up; last lines of $log:"
      tail -n 20 "$log" >&2 || true
      rm -f "$pidfile"
      exit 1
    fi
    if [ "$waited" -ge $((start_timeout * 4)) ]; then
      say "not accepting connections after ${start_timeout}s. Last lines of $log:"
      tail -n 20 "$log" >&2 || true
      [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null || true
      rm -f "$pidfile"
      exit 1
    fi
    sleep 0.25
    waited=$((waited + 1))
  done
  psql_super -d postgres <<'EOF'
CREATE ROLE lockutils LOGIN PASSWORD 'lockutils';
CREATE DATABASE lockutils OWNER lockutils;
CREATE ROLE lockutils_min LOGIN PASSWORD 'lockutils_min';
REVOKE ALL ON DATABASE lockutils FROM PUBLIC;
GRANT CONNECT ON DATABASE lockutils TO lockutils_min;
EOF
  say "serving on 127.0.0.1:$port (pid $pid, state in $dir, CA certificate $dir/ca.crt)"
  url
}

stop() {
  local pid
  if ! pid="$(our_pid)"; then
    rm -f "$pidfile"
    say "not running (no live server recorded in $pidfile)"
    return 0
  fi
  # SIGINT: PostgreSQL's fast shutdown (disconnects clients, then exits).
  kill -INT "$pid"
  for _ in $(seq 1 80); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "pid $pid still running after 20s; sending SIGQUIT (immediate shutdown)"
    kill -QUIT "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  say "stopped (pid $pid)"
}

status() {
  local pid
  if pid="$(our_pid)"; then
    if ready; then
      echo "running: pid $pid, 127.0.0.1:$port, state in $dir"
      url
      return 0
    fi
    echo "pid $pid is running but not accepting connections on 127.0.0.1:$port"
    return 1
  fi
  echo "not running (127.0.0.1:$port)"
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  url) url ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
