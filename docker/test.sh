#!/usr/bin/env bash
# Builds the image and checks it: the container becomes healthy on SQLite in its volume,
# runs as a non-root user, answers GraphQL with a token made inside it; then compose.yaml
# brings it up on PostgreSQL and the same checks pass. Runs only where a Docker daemon
# answers (`.ci/run` calls it then); the test suite never needs Docker.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker info >/dev/null 2>&1; then
  echo "docker test skipped: no Docker daemon answers"
  exit 0
fi

name="cmdb-test-$$"
project="cmdbtest$$"
cleanup() {
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker volume rm "$name-data" >/dev/null 2>&1 || true
  docker compose -p "$project" down -v >/dev/null 2>&1 || true
}
trap cleanup EXIT

wait_healthy() { # container
  for _ in $(seq 1 90); do
    state="$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null || true)"
    [[ "$state" == healthy ]] && return 0
    sleep 2
  done
  docker logs "$1" | tail -n 50
  echo "$1 did not become healthy" >&2
  return 1
}

query() { # container token
  docker exec "$1" curl -fsS http://127.0.0.1:8080/graphql \
    -H "authorization: Bearer $2" -H 'content-type: application/json' \
    -d '{"query":"{ ciClasses { name } }"}'
}

echo "==> image"
docker build -t cmdb:local .

echo "==> SQLite in the /data volume"
docker run -d --name "$name" -v "$name-data:/data" cmdb:local
wait_healthy "$name"
[[ "$(docker exec "$name" id -u)" != 0 ]] || { echo "runs as root" >&2; exit 1; }
token="$(docker exec "$name" cmdb token create --name docker-test --role viewer | tail -n1)"
query "$name" "$token" | grep -q '"server"'
docker exec "$name" test -s /data/cmdb.db

echo "==> compose.yaml on PostgreSQL"
docker compose -p "$project" up -d --build
container="$(docker compose -p "$project" ps -q cmdb)"
wait_healthy "$container"
token="$(docker compose -p "$project" exec -T cmdb cmdb token create --name docker-test --role viewer | tail -n1)"
query "$container" "$token" | grep -q '"server"'

echo "docker test passed"
