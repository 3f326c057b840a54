#!/usr/bin/env bash
# CI for the PostgreSQL engine. Sourced by .ci/run before its all-features test
# run (which then runs the PostgreSQL tests too): installs the tooz peer,
# starts a throwaway PostgreSQL server on 127.0.0.1 (scripts/postgres.sh),
# exports the variables the tests read, and stops the server (by its pid) when
# the shell exits, before any exit handler set earlier. Run directly, it also
# runs the PostgreSQL tests of every crate. Fails (and so fails CI) if the
# server or the peer cannot start.
#
#   LOCKUTILS_TEST_POSTGRES_URL  the tests' server (role lockutils)
#   LOCKUTILS_TEST_POSTGRES_CA   the server's self-signed CA certificate
#   LOCKUTILS_TEST_TOOZ          python with tooz and psycopg2
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
fi
__pg_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
__pg_port="${PG_PORT:-5433}"
__pg_dir="${PG_DIR:-${TMPDIR:-/tmp}/lockutils-postgres-$(id -u)-$__pg_port}"

echo "== PostgreSQL: tooz peer and a server on 127.0.0.1:$__pg_port"
LOCKUTILS_TEST_TOOZ="$("$__pg_root/scripts/tooz-peer.sh")"
export LOCKUTILS_TEST_TOOZ
LOCKUTILS_TEST_POSTGRES_URL="$("$__pg_root/scripts/postgres.sh" start)"
export LOCKUTILS_TEST_POSTGRES_URL
export LOCKUTILS_TEST_POSTGRES_CA="$__pg_dir/ca.crt"

# Stop the server at exit, then run whatever exit handler was there before.
__pg_prev_exit="$(trap -p EXIT)"
__pg_prev_cmd=""
if [ -n "$__pg_prev_exit" ]; then
  eval "set -- $__pg_prev_exit"
  __pg_prev_cmd="$3"
fi
trap '"$__pg_root/scripts/postgres.sh" stop; eval "$__pg_prev_cmd"' EXIT

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "== PostgreSQL tests (with the server and tooz)"
  cd "$__pg_root"
  cargo test -p lockutils-postgres -- --include-ignored
  cargo test -p lockutils --features postgresql,metrics --test postgresql --test postgresql_backend -- --include-ignored
  cargo test -p lockutils-cli --features postgresql --test postgres -- --include-ignored
fi
