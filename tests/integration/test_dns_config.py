"""Lotse's DNS interface under configuration: shuffling, truncation and answer limits (default and
configured), TTLs, the SOA, `only_passing`, `allow_stale`, `alt_domain`, recursors, and a
5,000-instance service.

Expected behaviour: Consul's classic DNS server (agent/dns.go: trimUDPResponse/trimTCPResponse,
GetTTLForService, handleRecurse, getResponseDomain) with Lotse's documented departures (see
test_dns.py's docstring; here chiefly: `enable_truncate` defaults to true). Each agent gets its
configuration through `-config-file`.
"""
import json
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import Agent, free_port
from test_dns import (assert_glue_matches_targets, assert_nxdomain_with_soa, build_query, dig,
                      parse_header, register, server_node, soa_of, srv_records, udp_exchange)


def start_agent(tmp_path_factory, config, *args):
    path = tmp_path_factory.mktemp("dnscfg") / "config.json"
    path.write_text(json.dumps(config))
    return Agent(["-dev", "-config-file", str(path), *args])


@pytest.fixture(scope="module")
def agent_with(tmp_path_factory):
    """Starts agents with a configuration; all are stopped at the end of the module."""
    started = []

    def make(config, *args):
        a = start_agent(tmp_path_factory, config, *args)
        started.append(a)
        return a

    yield make
    for a in started:
        a.stop()


def txn_register(agent, instances):
    """Registers (node, address, service) triples through /v1/txn, 64 to a request."""
    ops = []

    def flush():
        r = agent.put("/v1/txn", data=json.dumps(ops))
        assert r.status_code == 200, r.text[:500]
        ops.clear()

    for node, address, service in instances:
        ops.append({"Node": {"Verb": "set", "Node": {"Node": node, "Address": address}}})
        ops.append({"Service": {"Verb": "set", "Node": node, "Service": service}})
        if len(ops) >= 128:
            flush()
    if ops:
        flush()


def twelve(agent, name):
    """`name`: 12 instances on 12 nodes, 10.40.0.1-12."""
    txn_register(agent, [(f"{name}{i}", f"10.40.0.{i}",
                          {"ID": f"{name}{i}", "Service": name, "Port": 9000 + i})
                         for i in range(1, 13)])


# ================================================== shuffling and truncation, default settings

@pytest.fixture(scope="module")
def many(agent):
    """`many`: 12 instances on 12 nodes (10.13.0.1-12)."""
    for i in range(1, 13):
        register(agent, f"many{i}", f"10.13.0.{i}",
                 service={"ID": f"many{i}", "Service": "many", "Port": 9000 + i})
    return agent


ALL_MANY = sorted(f"10.13.0.{i}" for i in range(1, 13))


def test_answers_are_shuffled(many):
    orders = set()
    subsets = set()
    for _ in range(15):
        orders.add(tuple(r[3] for r in dig(many.dns_port, "many.service.consul", "A",
                                           "+tcp").answer))
        subsets.add(frozenset(r[3] for r in dig(many.dns_port, "many.service.consul", "A",
                                                "+noedns", "+ignore").answer))
    assert all(sorted(o) == ALL_MANY for o in orders)
    assert len(orders) >= 5          # 12! orders: repeats are (nearly) impossible
    assert len(subsets) >= 3         # plain UDP shows a different 3 of 12 each time


def test_plain_udp_reply_is_cut_to_three_answers_with_tc(many):
    res = dig(many.dns_port, "many.service.consul", "SRV", "+noedns", "+ignore")
    assert res.status == "NOERROR" and res.transport == "UDP"
    assert "tc" in res.flags and "aa" in res.flags
    assert len(res.answer) == 3 and res.size <= 512
    assert_glue_matches_targets(res)
    res = dig(many.dns_port, "many.service.consul", "A", "+noedns", "+ignore")
    assert len(res.answer) == 3 and "tc" in res.flags
    # An EDNS buffer of 512 is the same limit (HAProxy's default).
    res = dig(many.dns_port, "many.service.consul", "SRV", "+bufsize=512", "+ignore")
    assert len(res.answer) == 3 and "tc" in res.flags
    assert res.edns == {"version": 0, "udp": 512}


def test_a_large_edns_buffer_gets_every_answer(many):
    res = dig(many.dns_port, "many.service.consul", "SRV", "+bufsize=4096", "+ignore")
    assert len(res.answer) == 12 and "tc" not in res.flags
    assert_glue_matches_targets(res)
    res = dig(many.dns_port, "many.service.consul", "A", "+bufsize=4096", "+ignore")
    assert res.rdatas("A") == ALL_MANY and "tc" not in res.flags


def test_dig_retries_over_tcp_after_tc(many):
    res = dig(many.dns_port, "many.service.consul", "A", "+noedns")
    assert "Truncated, retrying in TCP mode" in res.text
    assert res.transport == "TCP" and res.rdatas("A") == ALL_MANY and "tc" not in res.flags


def test_tcp_gets_every_answer(many):
    res = dig(many.dns_port, "many.service.consul", "SRV", "+tcp")
    assert res.transport == "TCP" and len(res.answer) == 12 and "tc" not in res.flags
    assert_glue_matches_targets(res)


# ============================================================================== answer limits

def test_udp_answer_limit_sets_the_plain_udp_count(agent_with):
    a = agent_with({"dns_config": {"udp_answer_limit": 5}})
    twelve(a, "lim")
    for qtype in ("SRV", "A"):
        res = dig(a.dns_port, "lim.service.consul", qtype, "+noedns", "+ignore")
        assert len(res.answer) == 5 and "tc" in res.flags, qtype
    # Only at 512 bytes: a larger EDNS buffer gets all.
    assert len(dig(a.dns_port, "lim.service.consul", "A", "+bufsize=1400").answer) == 12


def test_udp_answer_limit_is_capped_at_eight(agent_with):
    a = agent_with({"dns_config": {"udp_answer_limit": 20}})
    twelve(a, "cap")
    res = dig(a.dns_port, "cap.service.consul", "A", "+noedns", "+ignore")
    assert len(res.answer) == 8 and "tc" in res.flags


def test_long_names_are_cut_to_512_bytes_with_matching_glue(agent_with):
    a = agent_with({"dns_config": {"udp_answer_limit": 8}})
    txn_register(a, [(f"{chr(97 + i)}" * 60, f"10.41.0.{i + 1}",
                      {"ID": f"long{i}", "Service": "long", "Port": 100 + i}) for i in range(8)])
    res = dig(a.dns_port, "long.service.consul", "SRV", "+noedns", "+ignore")
    assert res.status == "NOERROR" and "tc" in res.flags
    assert 1 <= len(res.answer) < 8 and res.size <= 512
    assert_glue_matches_targets(res)
    # Over TCP all eight, with their glue.
    res = dig(a.dns_port, "long.service.consul", "SRV", "+tcp")
    assert len(res.answer) == 8 and "tc" not in res.flags
    assert_glue_matches_targets(res)


def test_a_record_limit_caps_address_answers_but_not_srv(agent_with):
    a = agent_with({"dns_config": {"a_record_limit": 4}})
    twelve(a, "arl")
    for opts in (("+tcp",), ("+bufsize=4096", "+ignore")):
        res = dig(a.dns_port, "arl.service.consul", "A", *opts)
        assert res.status == "NOERROR" and len(res.answer) == 4, opts
        # Consul applies the limit while building the answer: nothing was cut, no TC.
        assert "tc" not in res.flags, opts
        res = dig(a.dns_port, "arl.service.consul", "SRV", *opts)
        assert len(res.answer) == 12 and "tc" not in res.flags, opts
    # Plain UDP: the answer limit (3) is lower, and that is a cut.
    res = dig(a.dns_port, "arl.service.consul", "A", "+noedns", "+ignore")
    assert len(res.answer) == 3 and "tc" in res.flags


def test_enable_truncate_false_cuts_silently(agent_with):
    a = agent_with({"dns_config": {"enable_truncate": False}})
    twelve(a, "silent")
    res = dig(a.dns_port, "silent.service.consul", "SRV", "+noedns")
    assert res.transport == "UDP"           # no TC, so dig does not retry over TCP
    assert len(res.answer) == 3 and "tc" not in res.flags
    assert_glue_matches_targets(res)


# ========================================================================= health and reads

def test_only_passing_leaves_out_warning_instances(agent_with):
    a = agent_with({"dns_config": {"only_passing": True}})
    register(a, "op1", "10.42.0.1", service={"ID": "op1", "Service": "op", "Port": 1})
    register(a, "op2", "10.42.0.2", service={"ID": "op2", "Service": "op", "Port": 2},
             check={"CheckID": "op2", "Name": "w", "Status": "warning", "ServiceID": "op2"})
    register(a, "op3", "10.42.0.3", service={"ID": "op3", "Service": "opwarn", "Port": 3},
             check={"CheckID": "op3", "Name": "w", "Status": "warning", "ServiceID": "op3"})
    assert dig(a.dns_port, "op.service.consul", "A").rdatas("A") == ["10.42.0.1"]
    assert [r[2] for r in srv_records(dig(a.dns_port, "op.service.consul", "SRV"))] == [1]
    assert_nxdomain_with_soa(dig(a.dns_port, "opwarn.service.consul", "A"))


def test_allow_stale_false_still_answers_on_a_single_server(agent_with):
    a = agent_with({"dns_config": {"allow_stale": False}})
    register(a, "st1", "10.43.0.1", service={"ID": "st1", "Service": "stale", "Port": 1})
    assert dig(a.dns_port, "stale.service.consul", "A").rdatas("A") == ["10.43.0.1"]
    assert dig(a.dns_port, "st1.node.consul", "A").rdatas("A") == ["10.43.0.1"]
    assert_nxdomain_with_soa(dig(a.dns_port, "nope.service.consul", "A"))
    assert dig(a.dns_port, "stale.service.consul", "SRV", "+tcp").status == "NOERROR"


# ======================================================================================= TTLs

@pytest.fixture(scope="module")
def ttl_agent(agent_with):
    a = agent_with({"dns_config": {
        "node_ttl": "7s",
        "service_ttl": {"db": "10s", "db*": "66s", "d*": "42s", "*": "5s", "web": "1m30s"},
        "soa": {"min_ttl": 60, "expire": 43200},
    }})
    for i, svc in enumerate(("db", "dblb", "dk", "api", "web")):
        register(a, f"ttl{i}", f"10.44.0.{i + 1}", meta={"k": "v"},
                 service={"ID": svc, "Service": svc, "Port": 80})
    return a


@pytest.mark.parametrize("service,ttl", [("db", 10), ("dblb", 66), ("dk", 42), ("api", 5),
                                         ("web", 90)])
def test_service_ttl_exact_then_longest_prefix_then_star(ttl_agent, service, ttl):
    res = dig(ttl_agent.dns_port, f"{service}.service.consul", "A")
    assert [r[1] for r in res.answer] == [ttl]
    res = dig(ttl_agent.dns_port, f"{service}.service.consul", "SRV")
    assert [r[1] for r in res.answer] == [ttl]
    assert [r[1] for r in res.additional] == [ttl, ttl]   # the target's A and the meta TXT


def test_node_ttl_applies_to_node_addr_and_ns_records(ttl_agent):
    p = ttl_agent.dns_port
    res = dig(p, "ttl0.node.consul", "ANY")
    assert sorted(r[1:3] for r in res.answer) == [(7, "A"), (7, "TXT")]
    assert dig(p, "0a2c0001.addr.dc1.consul", "A").answer[0][1] == 7
    server, _ = server_node(ttl_agent)
    res = dig(p, "consul.", "NS")
    assert res.answer == [("consul.", 7, "NS", f"{server}.node.dc1.consul.")]
    assert res.additional[0][1] == 7
    # PTR records are always TTL 0 (Consul #10577).
    assert dig(p, "-x", "10.44.0.1").answer[0][1] == 0


def test_soa_settings(ttl_agent):
    res = dig(ttl_agent.dns_port, "consul.", "SOA")
    [(_, ttl, _, data)] = res.answer
    assert ttl == 60 and list(map(int, data.split()[3:])) == [3600, 600, 43200, 60]
    # Negative answers carry it with its minimum as TTL.
    soa = soa_of(dig(ttl_agent.dns_port, "nope.service.consul", "A"))
    assert soa[4:] == (3600, 600, 43200, 60, 60)


# ================================================================================= alt_domain

def test_alt_domain(agent_with):
    a = agent_with({"alt_domain": "alt.example."})
    register(a, "altn", "10.45.0.1", meta={"k": "v"},
             service={"ID": "alt1", "Service": "altsvc", "Port": 81})
    p = a.dns_port
    assert dig(p, "altsvc.service.alt.example", "A").answer == [
        ("altsvc.service.alt.example.", 0, "A", "10.45.0.1")]
    assert dig(p, "altn.node.dc1.alt.example", "A").rdatas("A") == ["10.45.0.1"]
    res = dig(p, "altsvc.service.alt.example", "SRV")
    assert srv_records(res) == [(1, 1, 81, "altn.node.dc1.alt.example.")]
    assert sorted(res.additional) == [("altn.node.dc1.alt.example.", 0, "A", "10.45.0.1"),
                                      ("altn.node.dc1.alt.example.", 0, "TXT", '"k=v"')]
    # The main domain still answers under its own name.
    assert srv_records(dig(p, "_altsvc._tcp.service.consul", "SRV")) == [
        (1, 1, 81, "altn.node.dc1.consul.")]
    assert_nxdomain_with_soa(dig(p, "nope.service.alt.example", "A"), domain="alt.example.")
    server, addr = server_node(a)
    res = dig(p, "alt.example.", "NS")
    assert res.answer == [("alt.example.", 0, "NS", f"{server}.node.dc1.alt.example.")]
    assert res.additional == [(f"{server}.node.dc1.alt.example.", 0, "A", addr)]
    assert dig(p, "alt.example.", "SOA").rdatas("SOA")[0].startswith(
        "ns.alt.example. hostmaster.alt.example.")
    # PTR answers always use the main domain.
    assert dig(p, "-x", "10.45.0.1").rdatas("PTR") == ["altn.node.dc1.consul."]


# ================================================================================== recursors

@pytest.fixture(scope="module")
def upstream(agent_with):
    """A second Lotse agent serving the domain `upstream.`: the recursor."""
    a = agent_with({"domain": "upstream."})
    register(a, "far", "10.77.0.1", service={"ID": "upweb", "Service": "upweb", "Port": 80})
    return a


class ServfailServer:
    """A UDP DNS server that answers SERVFAIL to everything (and counts the queries)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        deadline = time.monotonic() + 300
        while not self.stopped.is_set() and time.monotonic() < deadline:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            if len(data) < 12:
                continue
            self.hits += 1
            qd = struct.unpack(">H", data[4:6])[0]
            question = data[12:] if qd == 1 else b""
            header = data[:2] + struct.pack(">HHHHH", 0x8182, min(qd, 1), 0, 0, 0)
            # The question as sent, minus any OPT record: good enough for a resolver.
            self.sock.sendto(header + question.split(b"\x00\x00\x29")[0], peer)

    def close(self):
        self.stopped.set()
        self.thread.join(timeout=2)
        self.sock.close()


def test_recursion_forwards_other_names_over_udp_and_tcp(agent_with, upstream):
    down = agent_with({"recursors": [f"127.0.0.1:{upstream.dns_port}"]})
    for transport in ("+notcp", "+tcp"):
        direct = dig(upstream.dns_port, "upweb.service.upstream.", "A", transport)
        res = dig(down.dns_port, "upweb.service.upstream.", "A", transport)
        assert res.status == "NOERROR", transport
        assert res.transport == ("TCP" if transport == "+tcp" else "UDP")
        assert res.answer == [("upweb.service.upstream.", 0, "A", "10.77.0.1")]
        # The upstream's reply is passed on as it is, flags included.
        assert res.flags == direct.flags == {"qr", "aa", "rd"}, transport
        res = dig(down.dns_port, "nope.upstream.", "A", transport)
        assert_nxdomain_with_soa(res, domain="upstream.")
    # A PTR name nothing here answers is recursed too.
    assert dig(down.dns_port, "-x", "10.77.0.1").rdatas("PTR") == ["far.node.dc1.upstream."]
    # The agent's own answers say recursion is available; its domain is never forwarded.
    res = dig(down.dns_port, "consul.", "SOA")
    assert res.flags == {"qr", "aa", "rd", "ra"}
    res = dig(down.dns_port, "nope.service.consul", "A")
    assert_nxdomain_with_soa(res)
    assert "ra" in res.flags


def test_an_unreachable_recursor_gives_servfail_quickly(agent_with):
    dead = free_port()
    a = agent_with({"recursors": [f"127.0.0.1:{dead}"],
                    "dns_config": {"recursor_timeout": "500ms"}})
    for transport in ("+notcp", "+tcp"):
        t0 = time.monotonic()
        res = dig(a.dns_port, "example.com.", "A", transport, timeout=4)
        elapsed = time.monotonic() - t0
        assert res.status == "SERVFAIL", transport
        assert res.flags == {"qr", "rd", "ra"}, transport   # RA, no AA
        assert res.answer == res.authority == []
        assert elapsed < 1.5, (transport, elapsed)


def test_a_silent_recursor_times_out_after_recursor_timeout(agent_with):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
        hole.bind(("127.0.0.1", 0))    # receives, never answers
        a = agent_with({"recursors": [f"127.0.0.1:{hole.getsockname()[1]}"],
                        "dns_config": {"recursor_timeout": "500ms"}})
        t0 = time.monotonic()
        res = dig(a.dns_port, "example.com.", "A", timeout=4)
        elapsed = time.monotonic() - t0
    assert res.status == "SERVFAIL" and "ra" in res.flags and "aa" not in res.flags
    assert 0.4 <= elapsed < 2.0, elapsed


def test_sequential_recursors_skip_servfail_and_unreachable_ones(agent_with, upstream):
    fake = ServfailServer()
    try:
        a = agent_with({"recursors": [f"127.0.0.1:{fake.port}", f"127.0.0.1:{free_port()}",
                                      f"127.0.0.1:{upstream.dns_port}"],
                        "dns_config": {"recursor_strategy": "sequential",
                                       "recursor_timeout": "1s"}})
        for transport in ("+notcp", "+tcp"):
            res = dig(a.dns_port, "upweb.service.upstream.", "A", transport, timeout=4)
            assert res.status == "NOERROR", transport
            assert res.rdatas("A") == ["10.77.0.1"], transport
        assert fake.hits >= 1     # tried first, over UDP
    finally:
        fake.close()


# ================================================================== a 5,000-instance service

BIG = 5000


@pytest.fixture(scope="module")
def big(agent_with):
    a = agent_with({})
    txn_register(a, [(f"big{i}", f"10.{100 + i // 65536}.{(i // 256) % 256}.{i % 256}",
                      {"ID": "big", "Service": "big", "Port": 20000 + i}) for i in range(BIG)])
    register(a, "small1", "10.99.0.1", service={"ID": "small", "Service": "small", "Port": 1})
    return a


def big_address(target):
    """The address `big<i>.node.dc1.consul.` was registered with."""
    i = int(target.split(".")[0][3:])
    return f"10.{100 + i // 65536}.{(i // 256) % 256}.{i % 256}"


def assert_glue_is_right(res):
    assert_glue_matches_targets(res)
    for name, _, rtype, data in res.additional:
        if rtype == "A":
            assert data == big_address(name), (name, data)


def test_big_service_over_plain_udp(big):
    for qtype in ("SRV", "A"):
        res = dig(big.dns_port, "big.service.consul", qtype, "+noedns", "+ignore")
        assert res.status == "NOERROR" and "tc" in res.flags, qtype
        assert res.size <= 512 and len(res.answer) == 3, qtype
        if qtype == "SRV":
            assert_glue_is_right(res)


def test_big_service_over_edns_1232(big):
    res = dig(big.dns_port, "big.service.consul", "SRV", "+bufsize=1232", "+ignore")
    assert res.status == "NOERROR" and "tc" in res.flags
    assert res.size <= 1232 and len(res.answer) > 8
    assert res.edns == {"version": 0, "udp": 1232}
    assert_glue_is_right(res)
    res = dig(big.dns_port, "big.service.consul", "A", "+bufsize=1232", "+ignore")
    assert res.size <= 1232 and len(res.answer) > 8 and "tc" in res.flags


def test_big_service_over_the_largest_edns_buffer(big):
    # A client offering 65,535 bytes gets what one UDP datagram can carry: Consul caps the size
    # at 65,535 - 68 (maxUDPDatagramSize).
    # (Raw: dig would quietly retry with a smaller buffer when no reply comes.) IPv4 carries at
    # most 65,507 bytes in a datagram: a larger reply is never sent.
    for qtype in (33, 1):
        reply = udp_exchange(big.dns_port, build_query("big.service.consul.", qtype, qid=77,
                                                       edns=65535), timeout=3)
        assert reply is not None, f"qtype {qtype}: no reply"
        h = parse_header(reply)
        assert (h["id"], h["rcode"], h["tc"]) == (77, 0, 1)
        assert len(reply) <= 65467 and h["an"] >= 500, (len(reply), h["an"])


def test_big_service_over_tcp(big):
    res = dig(big.dns_port, "big.service.consul", "SRV", "+tcp", timeout=10)
    assert res.status == "NOERROR" and res.transport == "TCP"
    assert res.size <= 65523 and len(res.answer) >= 500
    assert len({r[3] for r in res.answer}) == len(res.answer)
    assert_glue_is_right(res)
    res = dig(big.dns_port, "big.service.consul", "A", "+tcp", timeout=10)
    assert res.size <= 65523 and len(res.answer) >= 500
    assert len(set(res.rdatas("A"))) == len(res.answer)


def test_big_service_does_not_hold_up_other_lookups(big):
    cmd = ["dig", "@127.0.0.1", "-p", str(big.dns_port), "big.service.consul", "SRV", "+tcp",
           "+time=20", "+tries=1"]
    busy = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for _ in range(4)]
    try:
        time.sleep(0.05)
        t0 = time.monotonic()
        assert dig(big.dns_port, "small.service.consul", "A").rdatas("A") == ["10.99.0.1"]
        assert dig(big.dns_port, "big7.node.consul", "A").rdatas("A") == [big_address("big7")]
        assert time.monotonic() - t0 < 2.0
    finally:
        for p in busy:
            p.wait(timeout=30)


# ================================================================ reloading the configuration

def test_reload_applies_dns_config_without_restarting_the_listener(tmp_path):
    """`dns_config` is reloaded as Consul reloads it (SIGHUP / `lotse reload`): the next answers
    follow the new limits and TTLs on the same port; a refused reload keeps the old ones."""
    path = tmp_path / "dns.json"
    path.write_text(json.dumps({"dns_config": {"udp_answer_limit": 1}}))
    a = Agent(["-dev", "-config-file", str(path)])
    try:
        twelve(a, "reload")
        before = dig(a.dns_port, "reload.service.consul", "A", "+noedns", "+ignore")
        assert len(before.answer) == 1 and "tc" in before.flags, before.text
        assert {r[1] for r in before.answer} == {0}, before.text

        path.write_text(json.dumps({"dns_config": {"udp_answer_limit": 5,
                                                   "service_ttl": {"reload": "30s"}}}))
        p = a.cli("reload")
        assert p.returncode == 0, p.stdout + p.stderr
        after = dig(a.dns_port, "reload.service.consul", "A", "+noedns", "+ignore")
        assert len(after.answer) == 5, after.text
        assert {r[1] for r in after.answer} == {30}, after.text

        # A configuration that does not load is refused and the running one stays.
        path.write_text(json.dumps({"dns_config": {"udp_answer_limit": -1}}))
        p = a.cli("reload")
        assert p.returncode != 0, p.stdout + p.stderr
        kept = dig(a.dns_port, "reload.service.consul", "A", "+noedns", "+ignore")
        assert len(kept.answer) == 5, kept.text
    finally:
        a.stop()
