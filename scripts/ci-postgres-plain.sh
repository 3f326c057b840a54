#!/usr/bin/env bash
# The PostgreSQL engine's tests again over plaintext sessions
# (sslmode=disable), which blocking callers drive from their own threads: the
# test server offers TLS, so the main run's sessions use it and stay with the
# crate's runtime thread. Needs the variables scripts/ci-postgres.sh exports
# (run after it, in the same shell or with them in the environment).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LOCKUTILS_TEST_POSTGRES_URL:?run scripts/ci-postgres.sh first}"
case "$LOCKUTILS_TEST_POSTGRES_URL" in
  *\?*) plain="$LOCKUTILS_TEST_POSTGRES_URL&sslmode=disable" ;;
  *) plain="$LOCKUTILS_TEST_POSTGRES_URL?sslmode=disable" ;;
esac
echo "== PostgreSQL tests over plaintext sessions"
LOCKUTILS_TEST_POSTGRES_URL="$plain" cargo test -p lockutils-postgres --test postgres -- --include-ignored
