#!/usr/bin/env bash
# Runs the GraphQL over HTTP server audit against a running cmdb server.
#
#   tools/graphql-http-audit/run.sh http://127.0.0.1:8080/graphql [TOKEN] [--strict]
#
# TOKEN (or the CMDB_TOKEN environment variable) is sent as `Authorization: Bearer TOKEN`.
# Installs the pinned dependencies with `npm ci` the first time. Exits 1 when any audit
# fails with `error` or `warn` (`--strict`: or `notice`). `.ci/run` runs it through against-cmdb.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [[ $# -lt 1 || "$1" == -* ]]; then
  echo "usage: $0 URL [TOKEN] [--strict]" >&2
  exit 2
fi
url="$1"
shift
if [[ $# -gt 0 && "$1" != --* ]]; then
  export CMDB_TOKEN="$1"
  shift
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node and npm are needed for the GraphQL over HTTP audit" >&2
  exit 2
fi

if [[ ! -d "$here/node_modules/graphql-http" ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

exec node "$here/audit.mjs" "$url" "$@"
