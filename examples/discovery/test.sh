#!/usr/bin/env bash
# The example discovery client against a real server, as CI runs it:
#
#   bash examples/discovery/test.sh [path/to/cmdb]   (default: target/debug/cmdb of this checkout)
#
# A throwaway SQLite database in a temporary directory, an admin token for the one-time
# class setup and the checks, a discovery token for the runs, the server on a free port.
# The first run must create the host and everything in it, refusing nothing; the second
# must find everything unchanged; then the API must show the host with its parts and
# services. Needs bash, curl and python3.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cmdb="${1:-$root/target/debug/cmdb}"
[[ "$cmdb" == */* ]] || cmdb="./$cmdb"  # a bare name is a file here, not a command on PATH
[[ -x "$cmdb" ]] || { echo "no cmdb binary at $cmdb (build it first, or pass its path)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/cmdb-discovery-example.XXXXXX")"
server=""
cleanup() {
  if [[ -n "$server" ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAILED: $*" >&2
  if [[ -s "$work/server.log" ]]; then
    echo "--- last lines of the server's log:" >&2
    tail -n 20 "$work/server.log" >&2
  fi
  exit 1
}
check() { echo "  ok: $*"; }
# A field of a JSON file, by a Python expression on `d`: json_get FILE 'd["items"]["created"]'
json_get() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

db="sqlite://$work/cmdb.db?mode=rwc"
hostname="$(python3 -c 'import socket; print(socket.gethostname())')"

echo "==> tokens"
token() {
  "$cmdb" token create --database-url "$db" --name "$1" --role "$2" \
    >"$work/token-$1.out" 2>"$work/token-$1.err" || { cat "$work/token-$1.err" >&2; fail "token create $1"; }
  grep -Eo 'cmdb_[A-Za-z0-9_-]+' "$work/token-$1.out" | head -n1
}
admin="$(token example-admin admin)"
discovery="$(token linux-host discovery)"
[[ -n "$admin" && -n "$discovery" ]] || fail "no token on the standard output of 'cmdb token create'"
check "admin and discovery tokens created"

echo "==> server"
# A port below the kernel's ephemeral range, which the client leaves out: the server is
# then one of the listening services it must find. A port taken between the check and the
# server's start makes the server exit; the next port is tried.
read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range
free_port() {
  python3 - "$ephemeral_low" <<'PY'
import random, socket, sys
low, high = 20000, int(sys.argv[1])
if high < low + 1000:  # an unusual ephemeral range: the server's port may fall in it
    high = 30000
for _ in range(100):
    port = random.randrange(low, high)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    break
PY
}
up=""
for _ in 1 2 3 4 5; do
  port="$(free_port)"
  [[ -n "$port" ]] || fail "found no free port"
  "$cmdb" serve --database-url "$db" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do  # up to 10 s
    if curl -fsS --max-time 1 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
      up=yes
      break
    fi
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n "$up" ]] && break
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=""
done
[[ -n "$up" ]] || fail "the server did not answer GET /healthz within 10 s"
url="http://127.0.0.1:$port/graphql"
check "server answering on 127.0.0.1:$port"

client() { python3 "$here/discover.py" --url "$url" --timeout 20 "$@"; }

echo "==> dry run"
# Two reads in a row must give the same batch (a service starting in between would
# change it: then it is read twice again).
for attempt in 1 2 3; do
  client --dry-run >"$work/batch.json"
  client --dry-run >"$work/batch-again.json"
  cmp -s "$work/batch.json" "$work/batch-again.json" && break
  diff "$work/batch.json" "$work/batch-again.json" >&2 || true
  [[ $attempt -lt 3 ]] || fail "two dry runs in a row read different batches, three times"
done
items="$(json_get "$work/batch.json" 'len(d["items"])')"
relationships="$(json_get "$work/batch.json" 'len(d["relationships"])')"
[[ "$(json_get "$work/batch.json" 'd["items"][0]["externalId"]')" == "host:$hostname" ]] \
  || fail "the batch does not start with the host"
[[ "$(json_get "$work/batch.json" 'd["mode"], d["scope"]')" == "('FULL_SYNC', 'host:$hostname')" ]] \
  || fail "the batch is not a full sync scoped to the host"
check "batch of $items items and $relationships relationships; two dry runs identical"

echo "==> errors"
set +e
client --token cmdb_not_a_token >"$work/out" 2>"$work/err"; status=$?
set -e
[[ $status == 2 ]] && grep -q UNAUTHENTICATED "$work/err" \
  || fail "an unknown token should exit 2 with UNAUTHENTICATED (exit $status: $(cat "$work/err"))"
check "unknown token: exit 2, $(head -n1 "$work/err")"
set +e
client --token "$discovery" --setup >"$work/out" 2>"$work/err"; status=$?
set -e
[[ $status == 2 ]] && grep -q FORBIDDEN "$work/err" \
  || fail "--setup with a discovery token should exit 2 with FORBIDDEN (exit $status: $(cat "$work/err"))"
check "--setup with the discovery token: exit 2, FORBIDDEN"

echo "==> setup (admin token, once)"
client --token "$admin" --setup
client --token "$admin" --setup >"$work/out"
! grep -q ': created' "$work/out" || fail "a second --setup created classes again"
check "classes created; a second --setup leaves them"

echo "==> first run"
set +e
client --token "$discovery" --json >"$work/run1.json"; status=$?
set -e
[[ $status == 0 ]] || {
  cat "$work/run1.json"
  fail "the first run exited $status (1: something refused, 2: the request failed)"
}
sent="$(json_get "$work/run1.json" '"%d %d" % (d["sent"]["items"], d["sent"]["relationships"])')"
created="$(json_get "$work/run1.json" '"%d %d" % (d["items"]["created"], d["relationships"]["created"])')"
[[ "$created" == "$sent" ]] \
  || { cat "$work/run1.json"; fail "the first run should create every item and relationship"; }
check "created ${created% *} items and ${created#* } relationships, refused nothing"

echo "==> second run: everything unchanged"
# What the host runs may really change between two runs (a service starting on the CI
# machine): then the batch differs from the one before, and the next run must find
# everything unchanged. The same batch reported as changed fails at once. The dry run
# before each run keeps the batch for the checks of the API below.
fingerprint() {
  python3 -B -c 'import json, sys; sys.path.insert(0, sys.argv[1]); import discover
print(discover.fingerprint(json.load(open(sys.argv[2]))))' "$here" "$1"
}
previous="$(json_get "$work/run1.json" 'd["fingerprint"]')"
for attempt in 1 2 3; do
  client --dry-run >"$work/batch.json"
  set +e
  client --token "$discovery" --json --expect-unchanged >"$work/run2.json" 2>"$work/err"; status=$?
  set -e
  if [[ $status != 0 && $status != 3 ]]; then
    cat "$work/run2.json" "$work/err" >&2
    fail "the second run exited $status"
  fi
  sent_fingerprint="$(json_get "$work/run2.json" 'd["fingerprint"]')"
  [[ $status == 0 && "$sent_fingerprint" == "$(fingerprint "$work/batch.json")" ]] && break
  if [[ $status == 3 && "$sent_fingerprint" == "$previous" ]]; then
    cat "$work/run2.json" >&2
    fail "the same batch sent twice was not reported unchanged"
  fi
  [[ $attempt -lt 3 ]] || fail "the host kept changing between runs"
  changed="$(json_get "$work/run2.json" \
    '"; ".join(u["name"] + " " + ",".join(u["changedAttributes"]) for u in d["updated"]) or "items added or gone"')"
  echo "  the host changed between runs ($changed); running again"
  previous="$sent_fingerprint"
done
sent="$(json_get "$work/run2.json" '"%d %d" % (d["sent"]["items"], d["sent"]["relationships"])')"
unchanged="$(json_get "$work/run2.json" '"%d %d" % (d["items"]["unchanged"], d["relationships"]["unchanged"])')"
[[ "$unchanged" == "$sent" ]] \
  || { cat "$work/run2.json"; fail "the second run should find every item and relationship unchanged"; }
check "all ${unchanged% *} items and ${unchanged#* } relationships unchanged"

echo "==> the host as the API shows it"
python3 - "$url" "$admin" "$work/batch.json" "$port" <<'PY'
import json, sys, urllib.request

url, token, batch_file, port = sys.argv[1:]
batch = json.load(open(batch_file))
host = batch["items"][0]
ephemeral_low, ephemeral_high = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())

query = """query($class: String!, $name: String!) {
  configurationItems(filter: { class: $class, name: { equals: $name } }) {
    nodes {
      name stale ciClass { name } attributes
      discoveredBy { source externalId scope stale }
      outgoing { type { name } target { name ciClass { name } } }
      incoming { type { name } source { name ciClass { name } } }
    }
  }
}"""
request = urllib.request.Request(url, method="POST", data=json.dumps(
    {"query": query, "variables": {"class": host["class"], "name": host["name"]}}).encode(),
    headers={"content-type": "application/json", "authorization": f"Bearer {token}",
             "accept": "application/graphql-response+json, application/json"})
answer = json.load(urllib.request.urlopen(request, timeout=20))
assert not answer.get("errors"), answer
nodes = answer["data"]["configurationItems"]["nodes"]
assert len(nodes) == 1, f"expected one {host['class']} named {host['name']}, got {nodes}"
ci = nodes[0]

def ok(what):
    print(f"  ok: {what}")

assert not ci["stale"], ci
assert ci["attributes"] == host["attributes"], (ci["attributes"], host["attributes"])
ok(f"{host['class']} {ci['name']} with the attributes sent ({', '.join(sorted(ci['attributes']))})")
assert [(d["source"], d["externalId"], d["scope"], d["stale"]) for d in ci["discoveredBy"]] == \
    [(batch["source"], host["externalId"], batch["scope"], False)], ci["discoveredBy"]
ok(f"discovered by {batch['source']} as {host['externalId']} in scope {batch['scope']}")

by_id = {item["externalId"]: item for item in batch["items"]}
expected_contains = sorted(
    (by_id[r["target"]["externalId"]]["name"], by_id[r["target"]["externalId"]]["class"])
    for r in batch["relationships"] if r["type"] == "contains")
contains = sorted((r["target"]["name"], r["target"]["ciClass"]["name"])
                  for r in ci["outgoing"] if r["type"]["name"] == "contains")
assert contains == expected_contains, (contains, expected_contains)
ok(f"contains {len(contains)}: {', '.join(name for name, _ in contains) or 'nothing'}")

expected_runs = sorted(by_id[r["source"]["externalId"]]["name"]
                       for r in batch["relationships"] if r["type"] == "runs_on")
runs_on = [r["source"] for r in ci["incoming"] if r["type"]["name"] == "runs_on"]
runs = sorted(source["name"] for source in runs_on)
assert runs == expected_runs, (runs, expected_runs)
assert all(source["ciClass"]["name"] == "listening_service" for source in runs_on), runs_on
ok(f"{len(runs)} listening services run on it")

own = f"{ci['name']}:tcp/{port}"
if not ephemeral_low <= int(port) <= ephemeral_high:
    assert own in runs, f"the server's own port {port} is not among the services: {runs}"
    ok(f"the server under test is among them: {own}")
PY

echo "discovery example: all checks passed"
