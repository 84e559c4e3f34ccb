#!/usr/bin/env python3
"""Registers the DNS benchmark's catalog in a Lotse (or Consul) agent through PUT /v1/txn.

Every instance gets its own node (Node op), one service instance (Service op) and one passing
service check (Check op): three operations per instance, 42 instances (126 operations) per
transaction (Consul and Lotse accept at most 128 operations per transaction).

Usage: register.py --url http://127.0.0.1:19540 SERVICE:COUNT:PORT:NODEPREFIX:NET [...]
  NET is the address scheme: "web" -> 127.0.1.<i> (i = 1..100 -> 127.0.1.1..127.0.1.100, at most
  254 instances), "big" -> 127.1.<(i-1)//200+1>.<(i-1)%200+1>.
The same addresses are written into the NSD zone by run.sh (zone_addr below is the single
source: `register.py --print-zone SPEC...` prints the zone lines).
"""
import argparse
import json
import sys
import time
import urllib.request

PER_TXN = 42  # instances per transaction, 3 operations each


def zone_addr(net, i):
    if net == "web":
        if i > 254:
            raise SystemExit("web scheme holds at most 254 instances")
        return f"127.0.1.{i}"
    if net == "big":
        return f"127.1.{(i - 1) // 200 + 1}.{(i - 1) % 200 + 1}"
    raise SystemExit(f"unknown address scheme {net}")


def parse_spec(s):
    svc, count, port, prefix, net = s.split(":")
    return svc, int(count), int(port), prefix, net


def instances(specs):
    for svc, count, port, prefix, net in specs:
        for i in range(1, count + 1):
            yield svc, port, f"{prefix}{i}", zone_addr(net, i), i


def ops_for(svc, port, node, addr, i):
    sid = f"{svc}-{i}"
    return [
        {"Node": {"Verb": "set", "Node": {"Node": node, "Address": addr}}},
        {"Service": {"Verb": "set", "Node": node,
                     "Service": {"ID": sid, "Service": svc, "Port": port}}},
        {"Check": {"Verb": "set", "Check": {"Node": node, "CheckID": f"service:{sid}",
                                              "Name": f"{svc} alive", "Status": "passing",
                                              "ServiceID": sid, "ServiceName": svc}}},
    ]


def put(url, body):
    req = urllib.request.Request(url + "/v1/txn", data=json.dumps(body).encode(), method="PUT",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        data = json.loads(r.read())
        if r.status != 200 or data.get("Errors"):
            raise SystemExit(f"txn failed: {r.status} {data.get('Errors')}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("--print-zone", action="store_true",
                    help="print NSD zone lines (origin consul.) instead of registering")
    ap.add_argument("specs", nargs="+")
    a = ap.parse_args()
    specs = [parse_spec(s) for s in a.specs]
    if a.print_zone:
        out = sys.stdout
        for svc, port, node, addr, _ in instances(specs):
            out.write(f"{svc}.service IN A {addr}\n")
            out.write(f"_{svc}._tcp.service IN SRV 1 1 {port} {node}.node.dc1.consul.\n")
            out.write(f"{svc}.service IN SRV 1 1 {port} {node}.node.dc1.consul.\n")
            out.write(f"{node}.node.dc1 IN A {addr}\n")
        return
    t0 = time.monotonic()
    batch, txns, n = [], 0, 0
    for inst in instances(specs):
        batch.append(inst)
        if len(batch) == PER_TXN:
            put(a.url, [op for b in batch for op in ops_for(*b)])
            txns += 1
            n += len(batch)
            batch = []
    if batch:
        put(a.url, [op for b in batch for op in ops_for(*b)])
        txns += 1
        n += len(batch)
    print(f"INFO registered instances={n} txns={txns} wall_s={time.monotonic() - t0:.2f} url={a.url}")


if __name__ == "__main__":
    main()
