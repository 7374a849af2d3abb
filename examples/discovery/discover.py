#!/usr/bin/env python3
"""Discovers this Linux host and records it in cmdb, in one upsertConfigurationItems call.

What it reads is real and available on any Linux machine: the host's CPUs, memory and
operating system (/proc, /etc/os-release), its block devices (/sys/block), its network
interfaces (/sys/class/net) and the TCP ports something listens on (/proc/net/tcp, tcp6).
It sends them as one FULL_SYNC batch scoped to this host, so that anything it reported
before and no longer sees (a removed disk, a stopped service) is marked stale by the
server, never deleted. Every value is read so that two runs on an unchanged host send the
same batch: the second run reports everything UNCHANGED.

Python 3 standard library only. Run `discover.py --help` for the options.
"""

import argparse
import json
import os
import socket
import sys
import urllib.error
import urllib.request

# The classes this script records. `--setup` creates the ones the server lacks (it needs an
# admin token); the seeded catalogue already has `computer`.
CLASSES = [
    {
        "name": "disk",
        "description": "A block device of a computer, as its kernel sees it.",
        "attributes": [
            {"name": "device", "type": "STRING", "required": True},
            {"name": "size_bytes", "type": "INTEGER"},
            {"name": "model", "type": "STRING"},
            {"name": "rotational", "type": "BOOLEAN"},
        ],
    },
    {
        "name": "network_interface",
        "description": "A network interface of a computer.",
        "attributes": [
            {"name": "interface", "type": "STRING", "required": True},
            {"name": "mac_address", "type": "STRING"},
            {"name": "mtu", "type": "INTEGER"},
        ],
    },
    {
        "name": "listening_service",
        "description": "Something accepting TCP connections on a port of a computer.",
        "attributes": [
            {"name": "protocol", "type": "STRING", "required": True},
            {"name": "port", "type": "INTEGER", "required": True},
        ],
    },
]


def read(path, default=None):
    """The text of a file, stripped; `default` when it cannot be read (it varies by host)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return default


def host_facts():
    """The host itself: names, CPUs, memory, operating system."""
    cpuinfo = read("/proc/cpuinfo", "")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
              if line.startswith("model name")]
    meminfo = dict(line.split(":", 1) for line in read("/proc/meminfo", "").splitlines()
                   if ":" in line)
    mem_kb = int(meminfo.get("MemTotal", "0 kB").split()[0])
    os_release = dict(line.split("=", 1) for line in read("/etc/os-release", "").splitlines()
                      if "=" in line)
    fqdn = socket.getfqdn()
    return {
        "hostname": socket.gethostname(),
        # The class identifies computers by fqdn: a name that is not a real one ("localhost")
        # would make every such host the same CI, so it is left out.
        "fqdn": fqdn if "." in fqdn and not fqdn.startswith("localhost") else None,
        "cpu_count": os.cpu_count() or len(models),
        "cpu_model": models[0] if models else None,
        "memory_gb": round(mem_kb / (1024 * 1024), 1),
        "os": os_release.get("PRETTY_NAME", "").strip('"') or None,
        "kernel": read("/proc/sys/kernel/osrelease"),
    }


def disks():
    """Block devices, without loop, RAM and device-mapper devices (not hardware)."""
    found = []
    for name in sorted(os.listdir("/sys/block")) if os.path.isdir("/sys/block") else []:
        if name.startswith(("loop", "ram", "zram", "dm-", "sr", "fd")):
            continue
        sectors = read(f"/sys/block/{name}/size")
        found.append({
            "device": name,
            "size_bytes": int(sectors) * 512 if sectors and sectors.isdigit() else None,
            "model": read(f"/sys/block/{name}/device/model"),
            "rotational": read(f"/sys/block/{name}/queue/rotational") == "1",
        })
    return found


def interfaces():
    """Network interfaces but the loopback."""
    found = []
    base = "/sys/class/net"
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        if name == "lo":
            continue
        mtu = read(f"{base}/{name}/mtu")
        found.append({
            "interface": name,
            "mac_address": read(f"{base}/{name}/address"),
            "mtu": int(mtu) if mtu and mtu.isdigit() else None,
        })
    return found


def listening_ports():
    """TCP ports something listens on (state 0A), IPv4 and IPv6 together."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in (read(table, "") or "").splitlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def without_nulls(values):
    """Attributes with a value: a null would ask the server to remove the attribute."""
    return {key: value for key, value in values.items() if value is not None}


def batch(source):
    """The whole host as one FULL_SYNC batch: items, and relationships between them."""
    host = host_facts()
    key = f"host:{host['hostname']}"
    items = [{
        "class": "computer",
        "name": host["hostname"],
        "externalId": key,
        "attributes": without_nulls({k: v for k, v in host.items() if k != "hostname"}),
    }]
    relationships = []
    for disk in disks():
        ext = f"{key}/disk/{disk['device']}"
        items.append({"class": "disk", "name": f"{host['hostname']}:{disk['device']}",
                      "externalId": ext, "attributes": without_nulls(disk)})
        relationships.append({"source": {"externalId": key}, "target": {"externalId": ext},
                              "type": "contains"})
    for nic in interfaces():
        ext = f"{key}/nic/{nic['interface']}"
        items.append({"class": "network_interface",
                      "name": f"{host['hostname']}:{nic['interface']}",
                      "externalId": ext, "attributes": without_nulls(nic)})
        relationships.append({"source": {"externalId": key}, "target": {"externalId": ext},
                              "type": "contains"})
    for port in listening_ports():
        ext = f"{key}/tcp/{port}"
        items.append({"class": "listening_service", "name": f"{host['hostname']}:tcp/{port}",
                      "externalId": ext, "attributes": {"protocol": "tcp", "port": port}})
        relationships.append({"source": {"externalId": ext}, "target": {"externalId": key},
                              "type": "runs_on"})
    return {"source": source, "mode": "FULL_SYNC", "scope": key,
            "items": items, "relationships": relationships}


class ApiError(Exception):
    """The server refused the request, or could not be reached."""


def graphql(url, token, query, variables, timeout):
    """One GraphQL request; its `data`, or ApiError naming each error's code."""
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "content-type": "application/json",
        "accept": "application/graphql-response+json, application/json",
        "authorization": f"Bearer {token}",
    })
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:
        try:
            answer = json.load(error)
        except ValueError:
            raise ApiError(f"HTTP {error.code}") from error
    except (urllib.error.URLError, OSError) as error:
        raise ApiError(f"cannot reach {url}: {error}") from error
    if answer.get("errors"):
        raise ApiError("; ".join(
            f"{e.get('extensions', {}).get('code', '?')}: {e.get('message')}"
            for e in answer["errors"]))
    return answer["data"]


UPSERT = """mutation Discover($input: UpsertConfigurationItemsInput!) {
  upsertConfigurationItems(input: $input) {
    created updated unchanged stale rejected
    items { index outcome error { code message } }
    relationships { created updated unchanged stale rejected
                    items { index outcome error { code message } } }
  }
}"""


def setup(url, token, timeout):
    """Creates the classes this script needs that the server does not have yet."""
    for cls in CLASSES:
        found = graphql(url, token, "{ ciClasses { name } }", {}, timeout)
        if any(c["name"] == cls["name"] for c in found["ciClasses"]):
            continue
        graphql(url, token, "mutation($i: CreateCiClassInput!) { createCiClass(input: $i) { name } }",
                {"i": cls}, timeout)
        print(f"created class {cls['name']}")


def summary(report):
    """The counts of one report, and every refusal with its reason."""
    rels = report["relationships"]
    counts = {
        "items": {k: report[k] for k in ("created", "updated", "unchanged", "stale", "rejected")},
        "relationships": {k: rels[k] for k in ("created", "updated", "unchanged", "stale", "rejected")},
    }
    refused = [f"item {r['index']}: {r['error']['code']} {r['error']['message']}"
               for r in report["items"] if r.get("error")]
    refused += [f"relationship {r['index']}: {r['error']['code']} {r['error']['message']}"
                for r in rels["items"] if r.get("error")]
    return counts, refused


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080/graphql",
                        help="the server's GraphQL endpoint (default: %(default)s)")
    parser.add_argument("--token", default=os.environ.get("CMDB_TOKEN"),
                        help="API token (default: $CMDB_TOKEN); a discovery token is enough")
    parser.add_argument("--source", default="linux-host",
                        help="the source name recorded with every value (default: %(default)s)")
    parser.add_argument("--setup", action="store_true",
                        help="create the classes this script needs (needs an admin token), then exit")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the batch as JSON and send nothing")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--expect-unchanged", action="store_true",
                        help="exit 3 unless every item and relationship was unchanged")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    args = parser.parse_args()

    if args.dry_run:
        json.dump(batch(args.source), sys.stdout, indent=2)
        print()
        return 0
    if not args.token:
        parser.error("a token is needed: --token or CMDB_TOKEN")
    try:
        if args.setup:
            setup(args.url, args.token, args.timeout)
            return 0
        data = graphql(args.url, args.token, UPSERT, {"input": batch(args.source)}, args.timeout)
    except ApiError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts, refused = summary(data["upsertConfigurationItems"])
    if args.json:
        print(json.dumps({"counts": counts, "refused": refused}))
    else:
        for kind, c in counts.items():
            print(f"{kind}: {c['created']} created, {c['updated']} updated, "
                  f"{c['unchanged']} unchanged, {c['stale']} stale, {c['rejected']} rejected")
        for line in refused:
            print(f"  refused {line}")
    if refused:
        return 1
    if args.expect_unchanged:
        changed = any(c[k] for c in counts.values() for k in ("created", "updated", "stale"))
        if changed:
            print("expected everything unchanged", file=sys.stderr)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
