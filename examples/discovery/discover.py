#!/usr/bin/env python3
"""Discovers this Linux host and records it in cmdb, in one upsertConfigurationItems call.

What it reads is real and available on any Linux machine, without root: the host's CPUs,
memory, operating system and kernel (/proc, /etc/os-release), its disks (/sys/block), its
network interfaces (/sys/class/net) and the TCP ports something listens on (/proc/net/tcp
and tcp6). It sends all of it, items and relationships, as one FULL_SYNC batch scoped to
this host (`host:<hostname>`): what the source reported in that scope before and no longer
sees (a removed disk, a stopped service) is marked stale by the server, never deleted.

Every value is chosen so that two runs on an unchanged host send the same batch (no
timestamps, no counters, no uptime, sorted lists): the second run reports everything
UNCHANGED and the server writes nothing.

Python 3 standard library only. Run `discover.py --help` for the options.
"""

import argparse
import hashlib
import json
import os
import socket
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8080/graphql"

# The seeded catalogue has classes for the host (`server`, `virtual_machine`, both
# `computer`s) but none for the parts of one. `--setup` creates these three once; it needs
# an admin token, since a discovery token may only send batches. Identification is by the
# source's externalId alone: none of them has an attribute unique across hosts (MAC
# addresses are not: bonds and bridges share them).
CLASSES = [
    {
        "name": "disk",
        "label": "Disk",
        "description": "A block device of a computer, as its kernel sees it.",
        "attributes": [
            {"name": "device", "type": "STRING", "required": True,
             "description": "Kernel name, such as `sda` or `nvme0n1`."},
            {"name": "size_bytes", "type": "INTEGER", "description": "Capacity in bytes."},
            {"name": "model", "type": "STRING"},
            {"name": "serial", "type": "STRING"},
            {"name": "rotational", "type": "BOOLEAN",
             "description": "Whether the kernel treats it as a spinning disk."},
            {"name": "removable", "type": "BOOLEAN"},
        ],
    },
    {
        "name": "network_interface",
        "label": "Network interface",
        "description": "A network interface of a computer.",
        "attributes": [
            {"name": "interface", "type": "STRING", "required": True,
             "description": "Kernel name, such as `eth0`."},
            {"name": "mac_address", "type": "STRING"},
            {"name": "mtu", "type": "INTEGER"},
            {"name": "state", "type": "STRING",
             "description": "The kernel's operational state: `up`, `down`, `unknown`..."},
        ],
    },
    {
        "name": "listening_service",
        "label": "Listening service",
        "description": "Something accepting connections on a port of a computer.",
        "attributes": [
            {"name": "protocol", "type": "STRING", "required": True},
            {"name": "port", "type": "INTEGER", "required": True},
            {"name": "addresses", "type": "JSON",
             "description": "The local addresses it listens on, sorted (`0.0.0.0`, `::`...)."},
        ],
    },
]

# Block devices that are not disks: loop and RAM devices, compressed swap in RAM,
# device-mapper volumes (views of other disks), optical and floppy drives (their size is
# that of the medium inserted) and network block devices (attached and detached at will).
SKIPPED_DISK_PREFIXES = ("loop", "ram", "zram", "dm-", "sr", "fd", "nbd")

# Values firmware puts in the serial number field when nobody set one. Recorded, they
# would make every such machine look like the same server to the CMDB, which identifies
# servers by serial number.
PLACEHOLDER_SERIALS = {"", "0", "none", "n/a", "not specified", "not applicable",
                       "default string", "to be filled by o.e.m.", "system serial number",
                       "chassis serial number", "0123456789", "123456789"}

# Substrings of the DMI vendor or product name that mean the machine is virtual, for
# hosts whose CPUs do not carry the `hypervisor` flag (it only exists on x86).
VIRTUAL_VENDORS = ("qemu", "kvm", "vmware", "virtualbox", "xen", "bochs", "virtual machine",
                   "amazon ec2", "google compute engine", "openstack", "parallels")

TCP_LISTEN = "0A"  # the state column of /proc/net/tcp for a listening socket


# --- Reading the host ---------------------------------------------------------------------


def read_text(path):
    """The stripped text of a file, or None when it is missing or unreadable.

    Which files exist varies by kernel, hardware and privileges (DMI serials are readable
    by root only), so a missing file is a missing value, never an error.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def read_int(path):
    """A file holding one integer, or None."""
    text = read_text(path)
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def key_values(text, separator):
    """`key<separator>value` lines as a dict, first occurrence winning."""
    values = {}
    for line in (text or "").splitlines():
        if separator in line:
            key, value = line.split(separator, 1)
            values.setdefault(key.strip(), value.strip())
    return values


def is_virtual(cpuinfo):
    """Whether this machine is a virtual machine rather than physical hardware."""
    if any(line.startswith("flags") and "hypervisor" in line.split()
           for line in cpuinfo.splitlines()):
        return True
    dmi = " ".join(filter(None, (read_text("/sys/class/dmi/id/sys_vendor"),
                                 read_text("/sys/class/dmi/id/product_name")))).lower()
    return any(vendor in dmi for vendor in VIRTUAL_VENDORS)


def cpu_model(cpuinfo):
    """The CPU model, from the first line that names it (the key differs by architecture)."""
    for key in ("model name", "Hardware", "cpu model"):
        for line in cpuinfo.splitlines():
            if line.startswith(key) and ":" in line:
                return line.split(":", 1)[1].strip() or None
    return None


def real_uuid(text):
    """A firmware UUID, or None for a missing or placeholder one (all zeros, all F)."""
    text = (text or "").strip().lower()
    digits = text.replace("-", "")
    if len(digits) != 32 or set(digits) - set("0123456789abcdef") or len(set(digits)) == 1:
        return None
    return text


def real_fqdn():
    """This host's fully qualified name, or None when it has no real one.

    `fqdn` identifies computers in the seeded catalogue: a made-up name such as
    `localhost` would make every host without DNS the same CI.
    """
    fqdn = socket.getfqdn()
    if "." not in fqdn or fqdn.startswith("localhost") or fqdn.endswith(".localdomain"):
        return None
    return fqdn.lower()


def host_facts(host_class):
    """The host itself, as the class `server` or `virtual_machine` declares it.

    `host_class` is `auto` (decided from the CPU flags and DMI), or the class to use.
    """
    cpuinfo = read_text("/proc/cpuinfo") or ""
    processors = [line for line in cpuinfo.splitlines() if line.startswith("processor")]
    meminfo = key_values(read_text("/proc/meminfo"), ":")
    mem_kib = int(meminfo.get("MemTotal", "0 kB").split()[0])
    os_release = key_values(read_text("/etc/os-release"), "=")

    if host_class == "auto":
        host_class = "virtual_machine" if is_virtual(cpuinfo) else "server"
    attributes = {
        "fqdn": real_fqdn(),
        "os": os_release.get("PRETTY_NAME", "").strip("\"'") or None,
        "kernel": read_text("/proc/sys/kernel/osrelease"),
        "architecture": os.uname().machine,
        "cpu_count": len(processors) or os.cpu_count(),
        "cpu_model": cpu_model(cpuinfo),
        # Tenths of GiB: MemTotal moves by a few KiB between kernels and boots, and
        # nobody sizes a machine to the KiB.
        "memory_gb": round(mem_kib / (1024 * 1024), 1) if mem_kib else None,
    }
    # Hardware identity, where the firmware tells (root only for the serial and UUID). It
    # lets the CMDB match this host with what another source (an asset register, vCenter)
    # recorded for it; absent, the host is known by this source's externalId alone.
    if host_class == "server":
        serial = read_text("/sys/class/dmi/id/product_serial")
        attributes["serial_number"] = (
            serial if serial and serial.lower() not in PLACEHOLDER_SERIALS else None)
        attributes["manufacturer"] = read_text("/sys/class/dmi/id/sys_vendor") or None
        attributes["model"] = read_text("/sys/class/dmi/id/product_name") or None
    elif host_class == "virtual_machine":
        attributes["vm_uuid"] = real_uuid(read_text("/sys/class/dmi/id/product_uuid"))
    return host_class, attributes


def disks():
    """The host's disks, by kernel name (sorted, so that the batch is stable)."""
    found = []
    base = "/sys/block"
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        if name.startswith(SKIPPED_DISK_PREFIXES):
            continue
        sectors = read_int(f"{base}/{name}/size")  # always in 512-byte units
        if not sectors:
            continue  # a reader with no medium, an unattached device
        found.append({
            "device": name,
            "size_bytes": sectors * 512,
            "model": read_text(f"{base}/{name}/device/model") or None,
            "serial": (read_text(f"{base}/{name}/device/serial")
                       or read_text(f"{base}/{name}/serial") or None),
            "rotational": read_text(f"{base}/{name}/queue/rotational") == "1",
            "removable": read_text(f"{base}/{name}/removable") == "1",
        })
    return found


def interfaces():
    """The host's network interfaces, by kernel name.

    The loopback is left out (every host has one), and so are `veth` interfaces: one
    half of a container's link, created and destroyed with the container, under a new
    name each time.
    """
    found = []
    base = "/sys/class/net"
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        if name == "lo" or name.startswith("veth"):
            continue
        found.append({
            "interface": name,
            "mac_address": read_text(f"{base}/{name}/address") or None,
            "mtu": read_int(f"{base}/{name}/mtu"),
            "state": read_text(f"{base}/{name}/operstate"),
        })
    return found


def decode_address(hex_address, family):
    """An address column of /proc/net/tcp{,6} as text (`0100007F` is `127.0.0.1`).

    The kernel prints the address as 32-bit words in the host's byte order.
    """
    raw = bytes.fromhex(hex_address)
    if sys.byteorder == "little":
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, raw)


def ephemeral_ports():
    """The range the kernel picks ports from for sockets bound to port 0."""
    text = read_text("/proc/sys/net/ipv4/ip_local_port_range")
    try:
        low, high = (int(value) for value in text.split())
        return range(low, high + 1)
    except (AttributeError, ValueError):
        return range(0)


def listening_services(include_ephemeral):
    """TCP ports something listens on, IPv4 and IPv6 together: port -> sorted addresses.

    A listener on a port from the ephemeral range got it from the kernel, or picked it at
    random, and gets another one when it restarts: recording it would add and stale a CI
    on every restart, so it is left out unless `include_ephemeral`.
    """
    skipped = range(0) if include_ephemeral else ephemeral_ports()
    found = {}
    for path, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in (read_text(path) or "").splitlines()[1:]:
            fields = line.split()
            if len(fields) < 4 or fields[3] != TCP_LISTEN:
                continue
            hex_address, hex_port = fields[1].split(":")
            port = int(hex_port, 16)
            if port not in skipped:
                found.setdefault(port, set()).add(decode_address(hex_address, family))
    return {port: sorted(addresses) for port, addresses in sorted(found.items())}


# --- The batch ----------------------------------------------------------------------------


def without_nulls(values):
    """Attributes with a value: a null asks the server to remove the attribute, and a value
    this run could not read (a file readable by root only) should not erase one an earlier
    run did read."""
    return {key: value for key, value in values.items() if value is not None}


def build_batch(source, host_class="auto", include_ephemeral=False):
    """The whole host as one FULL_SYNC batch: its items, and the relationships between them.

    Relationships: the host `contains` each disk and interface (the seeded type for a
    part of a whole), and each listening service `runs_on` the host (software on a
    computer: when the host fails, what runs on it is hit).
    """
    hostname = socket.gethostname()
    host_class, host_attributes = host_facts(host_class)
    host_id = f"host:{hostname}"
    host_ref = {"externalId": host_id}
    items = [{"class": host_class, "name": hostname, "externalId": host_id,
              "attributes": without_nulls(host_attributes)}]
    relationships = []

    def part(class_name, name, external_id, attributes):
        items.append({"class": class_name, "name": name, "externalId": external_id,
                      "attributes": without_nulls(attributes)})
        return {"externalId": external_id}

    for disk in disks():
        ref = part("disk", f"{hostname}:{disk['device']}",
                   f"{host_id}/disk/{disk['device']}", disk)
        relationships.append({"source": host_ref, "target": ref, "type": "contains"})
    for nic in interfaces():
        ref = part("network_interface", f"{hostname}:{nic['interface']}",
                   f"{host_id}/nic/{nic['interface']}", nic)
        relationships.append({"source": host_ref, "target": ref, "type": "contains"})
    for port, addresses in listening_services(include_ephemeral).items():
        ref = part("listening_service", f"{hostname}:tcp/{port}", f"{host_id}/tcp/{port}",
                   {"protocol": "tcp", "port": port, "addresses": addresses})
        relationships.append({"source": ref, "target": host_ref, "type": "runs_on"})

    return {"source": source, "mode": "FULL_SYNC", "scope": host_id,
            "items": items, "relationships": relationships}


def fingerprint(batch):
    """A digest of the batch: two runs that read the same host have the same one."""
    canonical = json.dumps(batch, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- The API ------------------------------------------------------------------------------


class ApiError(Exception):
    """The request did not get an answer with data: each error as (code, message)."""

    def __init__(self, errors):
        super().__init__("; ".join(f"{code}: {message}" for code, message in errors))
        self.errors = errors


def graphql(url, token, query, variables, timeout):
    """One GraphQL request over HTTP; its `data`, or ApiError.

    An answer with errors is a failure even when it carries partial data: this client
    only sends documents whose every field it needs.
    """
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "content-type": "application/json",
        "accept": "application/graphql-response+json, application/json",
        "authorization": f"Bearer {token}",
    })
    status = None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        # With application/graphql-response+json, refused requests come as 4xx with a
        # GraphQL body (401 UNAUTHENTICATED, 400 GRAPHQL_VALIDATION_FAILED...).
        status, payload = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ApiError([("TRANSPORT", f"cannot reach {url}: {reason}")]) from error
    try:
        answer = json.loads(payload)
    except ValueError:
        snippet = payload[:200].decode(errors="replace").strip()
        raise ApiError([("TRANSPORT", f"HTTP {status} from {url}, not a GraphQL answer"
                                      + (f": {snippet!r}" if snippet else
                                         " (is it the server's /graphql endpoint?)"))]) from None
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if errors:
        raise ApiError([(e.get("extensions", {}).get("code", "UNKNOWN"), e.get("message"))
                        for e in errors])
    if not isinstance(answer, dict) or answer.get("data") is None:
        raise ApiError([("TRANSPORT", f"HTTP {status}, an answer with neither data nor errors")])
    return answer["data"]


UPSERT = """
mutation Discover($input: UpsertConfigurationItemsInput!) {
  upsertConfigurationItems(input: $input) {
    runClosed created updated unchanged stale rejected
    items {
      index outcome changedAttributes
      ignoredAttributes { attribute owner reason }
      error { code message }
    }
    relationships {
      created updated unchanged stale rejected
      items { index outcome error { code message } }
    }
  }
}"""


def setup(url, token, timeout):
    """Creates the classes of `CLASSES` the server does not have yet; leaves others as
    they are (an administrator may have extended them)."""
    existing = {c["name"] for c in graphql(url, token, "{ ciClasses { name } }", {}, timeout)
                ["ciClasses"]}
    for ci_class in CLASSES:
        if ci_class["name"] in existing:
            print(f"class {ci_class['name']}: exists")
            continue
        graphql(url, token, "mutation($input: CreateCiClassInput!) "
                            "{ createCiClass(input: $input) { name } }",
                {"input": ci_class}, timeout)
        print(f"class {ci_class['name']}: created")


# --- The report ---------------------------------------------------------------------------

OUTCOMES = ("created", "updated", "unchanged", "stale", "rejected")


def summarize(batch, report):
    """What the server did, in terms of the batch sent: counts, and the items that changed,
    were refused or had values kept by another owner, named by their externalId."""
    rels = report["relationships"]

    def rel_name(index):
        rel = batch["relationships"][index]
        return (f"{rel['source'].get('externalId', rel['source'].get('id'))} "
                f"{rel['type']} {rel['target'].get('externalId', rel['target'].get('id'))}")

    def error(result):
        return result["error"] or {"code": "UNKNOWN", "message": "refused without a reason"}

    refused = [{"kind": "item", "index": r["index"],
                "name": batch["items"][r["index"]]["externalId"], **error(r)}
               for r in report["items"] if r["outcome"] == "REJECTED"]
    refused += [{"kind": "relationship", "index": r["index"], "name": rel_name(r["index"]),
                 **error(r)}
                for r in rels["items"] if r["outcome"] == "REJECTED"]
    return {
        "source": batch["source"],
        "scope": batch["scope"],
        "fingerprint": fingerprint(batch),
        "sent": {"items": len(batch["items"]), "relationships": len(batch["relationships"])},
        "runClosed": report["runClosed"],
        "items": {k: report[k] for k in OUTCOMES},
        "relationships": {k: rels[k] for k in OUTCOMES},
        "updated": [{"name": batch["items"][r["index"]]["externalId"],
                     "changedAttributes": r["changedAttributes"]}
                    for r in report["items"] if r["outcome"] == "UPDATED"],
        "ignored": [{"name": batch["items"][r["index"]]["externalId"], **ignored}
                    for r in report["items"] for ignored in r["ignoredAttributes"]],
        "refused": refused,
    }


def everything_unchanged(summary):
    """Whether the server found the host exactly as recorded: nothing created, updated,
    marked stale or refused."""
    return all(counts[k] == 0 for counts in (summary["items"], summary["relationships"])
               for k in OUTCOMES if k != "unchanged")


def print_summary(summary):
    """The summary for people."""
    print(f"{summary['source']}: sent {summary['sent']['items']} items and "
          f"{summary['sent']['relationships']} relationships (FULL_SYNC, scope "
          f"{summary['scope']})")
    for kind in ("items", "relationships"):
        counts = summary[kind]
        print(f"  {kind + ':':<15}" + "  ".join(f"{counts[k]} {k}" for k in OUTCOMES))
    for item in summary["updated"]:
        print(f"  updated {item['name']}: {', '.join(item['changedAttributes'])}")
    for item in summary["ignored"]:
        print(f"  kept {item['name']} {item['attribute']} as {item['owner']} set it "
              f"({item['reason']})")
    for item in summary["refused"]:
        print(f"  REJECTED {item['kind']} {item['index']} ({item['name']}): "
              f"{item['code']}: {item['message']}")
    if any("no CI class named" in item["message"] for item in summary["refused"]):
        print("  hint: create the missing classes once with an admin token: "
              "discover.py --setup --token <admin token>")


# --- Command line -------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 nothing refused; 1 some item or relationship refused; "
               "2 the request failed (transport or GraphQL error); 3 with "
               "--expect-unchanged, something was created, updated or marked stale.")
    parser.add_argument("--url", default=DEFAULT_URL,
                        help="the server's GraphQL endpoint (default: %(default)s)")
    parser.add_argument("--token", default=os.environ.get("CMDB_TOKEN"),
                        help="API token (default: $CMDB_TOKEN); role discovery is enough, "
                             "except for --setup (admin)")
    parser.add_argument("--source", default="linux-host",
                        help="the discovery source recorded with every value "
                             "(default: %(default)s)")
    parser.add_argument("--host-class", default="auto",
                        choices=("auto", "server", "virtual_machine", "computer"),
                        help="class of the host; auto: virtual_machine under a hypervisor, "
                             "else server (default: %(default)s)")
    parser.add_argument("--include-ephemeral-ports", action="store_true",
                        help="also record listeners on ports of the kernel's ephemeral range")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the batch as JSON and send nothing")
    parser.add_argument("--setup", action="store_true",
                        help="create the classes this script records that the server lacks "
                             "(needs an admin token), then exit")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as one JSON object")
    parser.add_argument("--expect-unchanged", action="store_true",
                        help="exit 3 unless every item and relationship was unchanged")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for the server (default: %(default)s)")
    args = parser.parse_args(argv)

    if args.dry_run:
        print(json.dumps(build_batch(args.source, args.host_class,
                                     args.include_ephemeral_ports), indent=2))
        return 0
    if not args.token:
        parser.error("a token is needed: --token or the environment variable CMDB_TOKEN")

    try:
        if args.setup:
            setup(args.url, args.token, args.timeout)
            return 0
        batch = build_batch(args.source, args.host_class, args.include_ephemeral_ports)
        data = graphql(args.url, args.token, UPSERT, {"input": batch}, args.timeout)
    except ApiError as error:
        for code, message in error.errors:
            print(f"error: {code}: {message}", file=sys.stderr)
        return 2

    summary = summarize(batch, data["upsertConfigurationItems"])
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
    if summary["refused"]:
        return 1
    if args.expect_unchanged and not everything_unchanged(summary):
        print("error: expected every item and relationship to be unchanged", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
