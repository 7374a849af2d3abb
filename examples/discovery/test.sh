#!/usr/bin/env bash
# Runs the example discovery client against a real server: a throwaway SQLite database, an
# admin token for the one-time class setup, a discovery token for the runs. The first run
# records the host; the second must report everything unchanged; then the API is asked
# for the host and what it contains.
#
#   examples/discovery/test.sh [path/to/cmdb]     (default: target/debug/cmdb)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cmdb="${1:-$here/../../target/debug/cmdb}"
work="$(mktemp -d /tmp/cmdb-discovery-example.XXXXXX)"
server=""
cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

db="sqlite://$work/cmdb.db?mode=rwc"
token() { "$cmdb" token create --database-url "$db" --name "$1" --role "$2" 2>/dev/null | grep -Eo 'cmdb_[A-Za-z0-9_-]+' | head -n1; }
admin="$(token example-admin admin)"
discovery="$(token linux-host discovery)"
port=$(( 20000 + RANDOM % 20000 ))
"$cmdb" serve --database-url "$db" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
url="http://127.0.0.1:$port/graphql"
client() { python3 "$here/discover.py" --url "$url" "$@"; }

echo "==> setup (admin token)"
client --token "$admin" --setup
echo "==> first run"
client --token "$discovery"
echo "==> second run: everything unchanged"
client --token "$discovery" --expect-unchanged

echo "==> the host and what it contains, as the API shows them"
host="$(hostname)"
python3 - "$url" "$admin" "$host" <<'PY'
import json, sys, urllib.request
url, token, host = sys.argv[1:]
query = """query($name: String!) { configurationItems(filter: { name: { equals: $name } }) {
  nodes { name ciClass { name } incoming { type { name } source { name } }
          outgoing { type { name } target { name ciClass { name } } } discoveredBy { source } } } }"""
request = urllib.request.Request(url, method="POST", data=json.dumps(
    {"query": query, "variables": {"name": host}}).encode(), headers={
    "content-type": "application/json", "authorization": f"Bearer {token}"})
data = json.load(urllib.request.urlopen(request))["data"]
nodes = data["configurationItems"]["nodes"]
assert len(nodes) == 1, nodes
node = nodes[0]
assert node["ciClass"]["name"] == "computer", node
contained = [r["target"]["ciClass"]["name"] for r in node["outgoing"] if r["type"]["name"] == "contains"]
assert "network_interface" in contained or "disk" in contained, node
print(f"{node['name']}: contains {len(contained)} ({', '.join(sorted(set(contained)))}), "
      f"{len(node['incoming'])} services run on it, discovered by "
      f"{', '.join(d['source'] for d in node['discoveredBy'])}")
PY
echo "discovery example passed"
