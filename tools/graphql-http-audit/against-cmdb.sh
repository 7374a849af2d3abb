#!/usr/bin/env bash
# Boots the cmdb binary (target/debug/cmdb, built by `cargo build`) on a throwaway SQLite
# database, gives it an admin token, and runs the GraphQL over HTTP server audit against it
# in strict mode: any error, warning or notice fails. Used by `.ci/run` where npm exists.
#
#   tools/graphql-http-audit/against-cmdb.sh [path/to/cmdb]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cmdb="${1:-$here/../../target/debug/cmdb}"
work="$(mktemp -d /tmp/cmdb-audit.XXXXXX)"
server=""
cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

db="sqlite://$work/cmdb.db?mode=rwc"
token="$("$cmdb" token create --database-url "$db" --name graphql-http-audit --role admin 2>/dev/null \
  | grep -Eo 'cmdb_[A-Za-z0-9_-]+' | head -n1)"
if [[ -z "$token" ]]; then
  echo "could not create a token for the audit" >&2
  exit 1
fi
port=$(( 20000 + RANDOM % 20000 ))
"$cmdb" serve --database-url "$db" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
"$here/run.sh" "http://127.0.0.1:$port/graphql" "$token" --strict
