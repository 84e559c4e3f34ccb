"""Lotse's DNS interface (port 8600 in Consul), queried with `dig` and raw sockets.

References (Consul source, read not copied):
  * agent/dns.go (1.15-1.17) - handleQuery/dispatch (name forms, rightmost keyword, locality),
                               nodeLookup, serviceLookup/serviceSRVRecords (Filter, Shuffle,
                               findWeight, dedup), handlePtr, soa/nameservers, setEDNS,
                               trimUDPResponse/trimTCPResponse/syncExtra, handleRecurse,
                               getResponseDomain
  * agent/dns_test.go, dns_service_lookup_test.go, dns_reverse_lookup_test.go
  * miekg/dns server.go, acceptfunc.go - QR=1 ignored, FORMERR/NOTIMP header-only replies,
                               REFUSED from the mux for names outside every zone
Lotse's deliberate departures, pinned here as Lotse's own:
  * `dns_config.enable_truncate` defaults to true: TC is set when a UDP reply was cut;
  * an empty NOERROR answer for a known name carries the SOA in authority (RFC 2308), node
    lookups included;
  * a PTR miss without recursors is NXDOMAIN + SOA (Consul >= 1.17.3 / PR #20679);
  * prepared queries, connect, ingress and virtual names, and other datacenters, are NXDOMAIN.

This module: every name form, SRV details, health filtering, EDNS0, malformed input, an idle TCP
connection, `-dns-port -1`. Shuffling, truncation and limits, TTLs, recursors, alt_domain and a
5,000-instance service are in test_dns_config.py, which imports the helpers here.
"""
import os
import random
import re
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field

import pytest

from conftest import Agent

# ----------------------------------------------------------------------------------- dig helper


@dataclass
class DigResult:
    """One reply as dig printed it. Records are (name, ttl, type, rdata) tuples."""
    status: str | None            # NOERROR, NXDOMAIN, ... ; None when no reply came
    flags: set = field(default_factory=set)
    opcode: str | None = None
    answer: list = field(default_factory=list)
    authority: list = field(default_factory=list)
    additional: list = field(default_factory=list)   # without the OPT pseudo-record
    edns: dict | None = None      # {"version": 0, "udp": 1232} when the reply had an OPT record
    size: int | None = None       # MSG SIZE rcvd
    transport: str | None = None  # "UDP" or "TCP": how the printed reply came
    text: str = ""

    def rdatas(self, rtype, section="answer"):
        return sorted(r[3] for r in getattr(self, section) if r[2] == rtype)

    def of_type(self, rtype, section="answer"):
        return [r for r in getattr(self, section) if r[2] == rtype]


_SECTIONS = {";; ANSWER SECTION:": "answer", ";; AUTHORITY SECTION:": "authority",
             ";; ADDITIONAL SECTION:": "additional"}


def parse_dig(text: str) -> DigResult:
    res = DigResult(status=None, text=text)
    section = None
    for line in text.splitlines():
        if "->>HEADER<<-" in line:
            # A retry over TCP prints a second reply: the last one counts.
            res = DigResult(status=None, text=text)
            m = re.search(r"opcode: (\w+), status: (\w+)", line)
            res.opcode, res.status = m.group(1), m.group(2)
            section = None
        elif line.startswith(";; flags:"):
            res.flags = set(line.split(";")[2].split(":", 1)[1].split())
        elif line.startswith("; EDNS:"):
            m = re.search(r"version: (\d+),.*udp: (\d+)", line)
            res.edns = {"version": int(m.group(1)), "udp": int(m.group(2))}
        elif line.startswith(";; ") and line.endswith("SECTION:"):
            section = _SECTIONS.get(line)   # QUESTION and OPT PSEUDO sections are skipped
        elif line.startswith(";; MSG SIZE"):
            res.size = int(line.split(":")[1])
        elif line.startswith(";; SERVER:"):
            res.transport = line.rsplit("(", 1)[1].rstrip(")")
        elif not line.strip():
            section = None
        elif line.startswith(";"):
            continue
        elif section:
            name, ttl, _cls, rtype, *rest = line.split(None, 4)
            getattr(res, section).append((name, int(ttl), rtype, rest[0] if rest else ""))
    return res


def dig(port, *args, timeout=2) -> DigResult:
    """`dig @127.0.0.1 -p PORT <args> +time=T +tries=1`, parsed."""
    cmd = ["dig", "@127.0.0.1", "-p", str(port), *args, f"+time={timeout}", "+tries=1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout * 4 + 10)
    return parse_dig(out.stdout)


def soa_of(res: DigResult):
    """The SOA in the authority section as (owner, mname, rname, serial, refresh, retry, expire,
    minimum, ttl)."""
    soas = res.of_type("SOA", "authority")
    assert len(soas) == 1, res.text
    name, ttl, _, data = soas[0]
    mname, rname, *nums = data.split()
    return (name, mname, rname, *map(int, nums), ttl)


def assert_nxdomain_with_soa(res: DigResult, domain="consul."):
    assert res.status == "NXDOMAIN", res.text
    assert res.answer == [], res.text
    assert "aa" in res.flags
    assert soa_of(res)[:3] == (domain, f"ns.{domain}", f"hostmaster.{domain}"), res.text


def srv_records(res: DigResult):
    """SRV answers as (priority, weight, port, target) tuples, sorted."""
    out = []
    for _, _, rtype, data in res.answer:
        if rtype == "SRV":
            p, w, port, target = data.split()
            out.append((int(p), int(w), int(port), target))
    return sorted(out)


def assert_glue_matches_targets(res: DigResult):
    """Every SRV target has an address record in the additional section and every address
    record there belongs to an SRV target (what HAProxy relies on)."""
    targets = {r[3] for r in srv_records(res)}
    glue = {r[0] for r in res.additional if r[2] in ("A", "AAAA")}
    assert targets and glue == targets, (len(targets), len(glue))


# ------------------------------------------------------------------------ raw packet helpers

def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def build_query(name="consul.", qtype=1, qid=0x4242, flags=0x0100, qdcount=1, questions=None,
                edns=None):
    """A query packet: header (with `flags` and `qdcount` as given) and `questions`
    (default: one question for `name`/`qtype`, class IN); with `edns`, an OPT record
    offering that UDP size."""
    if questions is None:
        questions = [(name, qtype)]
    body = b"".join(encode_name(n) + struct.pack(">HH", t, 1) for n, t in questions)
    arcount = 0
    if edns is not None:
        body += b"\x00" + struct.pack(">HHIH", 41, edns, 0, 0)
        arcount = 1
    return struct.pack(">HHHHHH", qid, flags, qdcount, 0, 0, arcount) + body


def parse_header(b: bytes) -> dict:
    qid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", b[:12])
    return {"id": qid, "qr": flags >> 15, "opcode": (flags >> 11) & 0xF, "aa": (flags >> 10) & 1,
            "tc": (flags >> 9) & 1, "rd": (flags >> 8) & 1, "ra": (flags >> 7) & 1,
            "rcode": flags & 0xF, "qd": qd, "an": an, "ns": ns, "ar": ar}


def udp_exchange(port, payload: bytes, timeout=1.0):
    """Sends one datagram; the reply's bytes, or None when nothing came within `timeout`."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, ("127.0.0.1", port))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None


FORMERR, NOTIMP = 1, 4


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------- catalog helpers

def register(agent, node, address, service=None, check=None, meta=None):
    body = {"Node": node, "Address": address}
    if meta:
        body["NodeMeta"] = meta
    if service:
        body["Service"] = service
    if check:
        body["Check"] = check
    r = agent.put("/v1/catalog/register", json=body)
    assert r.status_code == 200 and r.json() is True, r.text


def deregister(agent, node, service_id=None):
    body = {"Node": node}
    if service_id:
        body["ServiceID"] = service_id
    r = agent.put("/v1/catalog/deregister", json=body)
    assert r.status_code == 200, r.text


def server_node(agent):
    """The agent's own node name and address (the NS record's target and glue)."""
    name = agent.get("/v1/agent/self").json()["Config"]["NodeName"]
    node = agent.get(f"/v1/catalog/node/{name}").json()["Node"]
    return name, node["Address"]


# ============================================================================== name forms

@pytest.fixture(scope="module")
def names(agent):
    """Two `web` instances (tags V1/primary and v2), a node with meta, a node with a dot."""
    register(agent, "dnsn1", "10.10.0.1", meta={"key": "value"},
             service={"ID": "web1", "Service": "web", "Port": 80, "Tags": ["V1", "primary"]})
    register(agent, "dnsn2", "10.10.0.2",
             service={"ID": "web2", "Service": "web", "Port": 81, "Tags": ["v2"]})
    register(agent, "foo.bar", "10.10.0.3")
    return agent


def test_node_a_record_with_meta_txt_in_additional(names):
    res = dig(names.dns_port, "dnsn1.node.consul", "A")
    assert res.status == "NOERROR"
    assert res.flags == {"qr", "aa", "rd"}   # authoritative; no recursion without recursors
    assert res.answer == [("dnsn1.node.consul.", 0, "A", "10.10.0.1")]
    assert res.additional == [("dnsn1.node.consul.", 0, "TXT", '"key=value"')]
    assert res.authority == []


def test_node_with_datacenter_label(names):
    res = dig(names.dns_port, "dnsn1.node.dc1.consul", "A")
    assert res.answer == [("dnsn1.node.dc1.consul.", 0, "A", "10.10.0.1")]


def test_node_any_gives_address_and_meta(names):
    res = dig(names.dns_port, "dnsn1.node.consul", "ANY")
    assert res.status == "NOERROR"
    assert sorted(res.answer) == [("dnsn1.node.consul.", 0, "A", "10.10.0.1"),
                                  ("dnsn1.node.consul.", 0, "TXT", '"key=value"')]
    assert res.additional == []


def test_node_txt_gives_only_meta(names):
    res = dig(names.dns_port, "dnsn1.node.consul", "TXT")
    assert res.answer == [("dnsn1.node.consul.", 0, "TXT", '"key=value"')]


def test_node_aaaa_on_ipv4_node_is_empty_noerror_with_soa(names):
    res = dig(names.dns_port, "dnsn1.node.consul", "AAAA")
    assert res.status == "NOERROR"
    assert res.answer == []
    assert soa_of(res)[:3] == ("consul.", "ns.consul.", "hostmaster.consul.")


def test_node_srv_is_empty_noerror(names):
    res = dig(names.dns_port, "dnsn1.node.consul", "SRV")
    assert res.status == "NOERROR" and res.answer == []


def test_unknown_node_is_nxdomain_with_soa(names):
    res = dig(names.dns_port, "nosuchnode.node.consul", "A")
    assert_nxdomain_with_soa(res)
    name, mname, rname, serial, refresh, retry, expire, minimum, ttl = soa_of(res)
    assert (refresh, retry, expire, minimum, ttl) == (3600, 600, 86400, 0, 0)
    assert abs(serial - time.time()) < 120   # the serial is the Unix time


def test_node_name_with_a_dot(names):
    res = dig(names.dns_port, "foo.bar.node.consul", "A")
    assert res.answer == [("foo.bar.node.consul.", 0, "A", "10.10.0.3")]


def test_rightmost_keyword_wins(names):
    # `web.service.node.consul` is the node `web.service`, which does not exist.
    assert_nxdomain_with_soa(dig(names.dns_port, "web.service.node.consul", "A"))


def test_lookups_ignore_case_and_keep_the_question_case(names):
    res = dig(names.dns_port, "DnsN1.NODE.Consul", "A")
    assert res.answer == [("DnsN1.NODE.Consul.", 0, "A", "10.10.0.1")]
    res = dig(names.dns_port, "WeB.SeRvIcE.CoNsUl", "A")
    assert sorted(res.answer) == [("WeB.SeRvIcE.CoNsUl.", 0, "A", "10.10.0.1"),
                                  ("WeB.SeRvIcE.CoNsUl.", 0, "A", "10.10.0.2")]


def test_service_a_records(names):
    res = dig(names.dns_port, "web.service.consul", "A")
    assert res.status == "NOERROR" and res.flags == {"qr", "aa", "rd"}
    assert sorted(res.answer) == [("web.service.consul.", 0, "A", "10.10.0.1"),
                                  ("web.service.consul.", 0, "A", "10.10.0.2")]
    assert res.authority == []


def test_service_tag_filter_is_case_insensitive(names):
    for q in ("v1.web.service.consul", "V1.web.service.consul", "primary.web.service.consul"):
        assert dig(names.dns_port, q, "A").rdatas("A") == ["10.10.0.1"], q
    assert dig(names.dns_port, "v2.web.service.consul", "A").rdatas("A") == ["10.10.0.2"]
    assert_nxdomain_with_soa(dig(names.dns_port, "v3.web.service.consul", "A"))
    # Labels before the service are one tag: `x.v1` is no tag.
    assert_nxdomain_with_soa(dig(names.dns_port, "x.v1.web.service.consul", "A"))


def test_rfc2782_srv_names(names):
    p = names.dns_port
    both = [(1, 1, 80, "dnsn1.node.dc1.consul."), (1, 1, 81, "dnsn2.node.dc1.consul.")]
    assert srv_records(dig(p, "_web._tcp.service.consul", "SRV")) == both
    assert srv_records(dig(p, "_web._v1.service.consul", "SRV")) == both[:1]
    assert srv_records(dig(p, "_web._V2.service.dc1.consul", "SRV")) == both[1:]
    # For SRV the `service` label may be left out.
    assert srv_records(dig(p, "_web._tcp.consul", "SRV")) == both
    assert srv_records(dig(p, "_web._primary.dc1.consul", "SRV")) == both[:1]
    # `_udp` is a tag like any other; no instance has it.
    assert_nxdomain_with_soa(dig(p, "_web._udp.service.consul", "SRV"))
    # Without SRV, `_web._tcp.consul` is no name.
    assert_nxdomain_with_soa(dig(p, "_web._tcp.consul", "A"))


def test_service_with_datacenter_forms(names):
    for q in ("web.service.dc1.consul", "web.service.dc1.dc.consul", "WEB.service.DC1.consul"):
        assert dig(names.dns_port, q, "A").rdatas("A") == ["10.10.0.1", "10.10.0.2"], q


@pytest.mark.parametrize("qname", [
    "web.service.dc2.consul", "web.service.dc2.dc.consul", "dnsn1.node.dc2.consul",
    "dnsn1.node.dc2.dc.consul", "web.service.dc1.extra.more.consul",
])
def test_other_datacenters_and_bad_localities_are_nxdomain(names, qname):
    assert_nxdomain_with_soa(dig(names.dns_port, qname, "A"))


@pytest.mark.parametrize("qname", [
    "consul.", "nope.consul.", "service.consul.", "node.consul.", "addr.consul.",
    "banana._web._v1.service.consul.", "web.query.consul.", "web.connect.consul.",
    "web.ingress.consul.", "web.virtual.consul.", "nosuchservice.service.consul.",
])
def test_unknown_names_are_nxdomain_with_soa(names, qname):
    assert_nxdomain_with_soa(dig(names.dns_port, qname, "A"))


def test_addr_names_v4_and_v6(names):
    p = names.dns_port
    res = dig(p, "0a0a0001.addr.dc1.consul", "A")
    assert res.status == "NOERROR"
    assert res.answer == [("0a0a0001.addr.dc1.consul.", 0, "A", "10.10.0.1")]
    assert dig(p, "7F000001.addr.consul", "A").answer == [
        ("7F000001.addr.consul.", 0, "A", "127.0.0.1")]
    res = dig(p, "2607002040050808000000000000200e.addr.dc1.consul", "AAAA")
    assert res.answer == [("2607002040050808000000000000200e.addr.dc1.consul.", 0, "AAAA",
                           "2607:20:4005:808::200e")]
    # Another type: the address goes to the additional section (Consul's quirk).
    res = dig(p, "0a0a0001.addr.dc1.consul", "SRV")
    assert res.status == "NOERROR" and res.answer == []
    assert res.additional == [("0a0a0001.addr.dc1.consul.", 0, "A", "10.10.0.1")]
    # Bad hex is no name; another length an empty answer without SOA.
    assert_nxdomain_with_soa(dig(p, "0g0a0001.addr.consul", "A"))
    res = dig(p, "0a0a00.addr.consul", "A")
    assert (res.status, res.answer, res.authority) == ("NOERROR", [], [])


def test_ptr_for_node_addresses(names, agent):
    res = dig(names.dns_port, "-x", "10.10.0.1")
    assert res.status == "NOERROR" and "aa" in res.flags
    assert res.answer == [("1.0.10.10.in-addr.arpa.", 0, "PTR", "dnsn1.node.dc1.consul.")]
    register(agent, "ptr6node", "fe80::beef")
    res = dig(names.dns_port, "-x", "fe80::beef")
    assert res.rdatas("PTR") == ["ptr6node.node.dc1.consul."]


def test_ptr_for_a_service_address(agent):
    register(agent, "ptrnode", "10.10.1.1",
             service={"ID": "ptrsvc1", "Service": "ptrsvc", "Address": "10.10.1.2", "Port": 1})
    res = dig(agent.dns_port, "-x", "10.10.1.2")
    assert res.answer == [("2.1.10.10.in-addr.arpa.", 0, "PTR", "ptrsvc.service.dc1.consul.")]
    # The node's own address still names the node.
    assert dig(agent.dns_port, "-x", "10.10.1.1").rdatas("PTR") == ["ptrnode.node.dc1.consul."]


def test_ptr_miss_is_nxdomain_with_soa(agent):
    res = dig(agent.dns_port, "-x", "10.254.254.254")
    assert_nxdomain_with_soa(res)
    assert "ra" not in res.flags


def test_soa_of_the_domain(agent):
    server, addr = server_node(agent)
    res = dig(agent.dns_port, "consul.", "SOA")
    assert res.status == "NOERROR" and "aa" in res.flags
    [(name, ttl, rtype, data)] = res.answer
    mname, rname, serial, *timers = data.split()
    assert (name, ttl, rtype, mname, rname) == ("consul.", 0, "SOA", "ns.consul.",
                                                "hostmaster.consul.")
    assert list(map(int, timers)) == [3600, 600, 86400, 0]
    assert abs(int(serial) - time.time()) < 120
    assert res.authority == [("consul.", 0, "NS", f"{server}.node.dc1.consul.")]
    assert res.additional == [(f"{server}.node.dc1.consul.", 0, "A", addr)]
    # Any name in the domain gets the domain's SOA.
    assert dig(agent.dns_port, "anything.node.consul", "SOA").rdatas("SOA")[0] \
        .startswith("ns.consul. hostmaster.consul.")


def test_ns_of_the_domain_with_glue(agent):
    server, addr = server_node(agent)
    for q in ("consul.", "something.node.consul."):
        res = dig(agent.dns_port, q, "NS")
        assert res.status == "NOERROR", q
        assert res.answer == [("consul.", 0, "NS", f"{server}.node.dc1.consul.")], q
        assert res.additional == [(f"{server}.node.dc1.consul.", 0, "A", addr)], q
    # The NS target resolves.
    assert dig(agent.dns_port, f"{server}.node.dc1.consul", "A").rdatas("A") == [addr]


def test_names_outside_the_domain_are_refused_without_recursors(agent):
    res = dig(agent.dns_port, "example.com", "A")
    assert res.status == "REFUSED"
    assert res.flags == {"qr", "rd"}     # no AA, no RA, RD echoed
    assert res.edns is None and res.answer == res.authority == []
    res = dig(agent.dns_port, "example.com", "A", "+norec")
    assert res.status == "REFUSED" and res.flags == {"qr"}


# ================================================================================ SRV details

def test_srv_priority_weight_port_target_and_glue(agent):
    register(agent, "wa", "10.11.0.1",
             service={"ID": "w1", "Service": "weighted", "Port": 1001,
                      "Weights": {"Passing": 10, "Warning": 1}})
    register(agent, "wb", "10.11.0.2",
             service={"ID": "w2", "Service": "weighted", "Port": 1002,
                      "Weights": {"Passing": 7, "Warning": 3}},
             check={"CheckID": "w2-warn", "Name": "w2", "Status": "warning", "ServiceID": "w2"})
    register(agent, "wc", "10.11.0.3", service={"ID": "w3", "Service": "weighted", "Port": 1003})
    res = dig(agent.dns_port, "weighted.service.consul", "SRV")
    assert res.status == "NOERROR"
    assert srv_records(res) == [(1, 1, 1003, "wc.node.dc1.consul."),
                                (1, 3, 1002, "wb.node.dc1.consul."),
                                (1, 10, 1001, "wa.node.dc1.consul.")]
    assert all(r[:2] == ("weighted.service.consul.", 0) for r in res.answer)
    assert sorted(res.additional) == [("wa.node.dc1.consul.", 0, "A", "10.11.0.1"),
                                      ("wb.node.dc1.consul.", 0, "A", "10.11.0.2"),
                                      ("wc.node.dc1.consul.", 0, "A", "10.11.0.3")]


def test_srv_target_for_a_service_with_its_own_ip(agent):
    register(agent, "ownipnode", "10.11.1.1", meta={"rack": "r1"},
             service={"ID": "o1", "Service": "ownip", "Address": "10.11.1.9", "Port": 7})
    # Even the node's own address, given as the service's, makes an `.addr.` target.
    register(agent, "ownipnode2", "10.11.1.2",
             service={"ID": "o2", "Service": "ownip", "Address": "10.11.1.2", "Port": 8})
    res = dig(agent.dns_port, "ownip.service.consul", "SRV")
    assert srv_records(res) == [(1, 1, 7, "0a0b0109.addr.dc1.consul."),
                                (1, 1, 8, "0a0b0102.addr.dc1.consul.")]
    assert sorted(res.additional) == [
        ("0a0b0102.addr.dc1.consul.", 0, "A", "10.11.1.2"),
        ("0a0b0109.addr.dc1.consul.", 0, "A", "10.11.1.9"),
        ("ownipnode.node.dc1.consul.", 0, "TXT", '"rack=r1"'),   # meta under the node's name
    ]
    assert dig(agent.dns_port, "ownip.service.consul", "A").rdatas("A") == ["10.11.1.2",
                                                                          "10.11.1.9"]


def test_service_with_a_host_name_address(agent):
    register(agent, "extnode", "10.11.2.1",
             service={"ID": "e1", "Service": "extsvc", "Address": "www.example.com", "Port": 443})
    res = dig(agent.dns_port, "extsvc.service.consul", "A")
    assert res.status == "NOERROR"
    assert res.answer == [("extsvc.service.consul.", 0, "CNAME", "www.example.com.")]
    res = dig(agent.dns_port, "extsvc.service.consul", "SRV")
    assert srv_records(res) == [(1, 1, 443, "www.example.com.")]
    assert res.of_type("A", "additional") == []   # nothing to resolve it with, no recursors
    # With an instance that has an IP, no CNAME is given.
    register(agent, "extnode2", "10.11.2.2", service={"ID": "e2", "Service": "extsvc", "Port": 1})
    res = dig(agent.dns_port, "extsvc.service.consul", "A")
    assert res.answer == [("extsvc.service.consul.", 0, "A", "10.11.2.2")]


def test_duplicate_instances_collapse(agent):
    for sid, port in (("d1", 8000), ("d2", 8000), ("d3", 8001)):
        register(agent, "dupnode", "10.11.3.1",
                 service={"ID": sid, "Service": "dup", "Port": port})
    res = dig(agent.dns_port, "dup.service.consul", "SRV")
    assert srv_records(res) == [(1, 1, 8000, "dupnode.node.dc1.consul."),
                                (1, 1, 8001, "dupnode.node.dc1.consul.")]
    assert res.additional == [("dupnode.node.dc1.consul.", 0, "A", "10.11.3.1")]
    assert dig(agent.dns_port, "dup.service.consul", "A").answer == [
        ("dup.service.consul.", 0, "A", "10.11.3.1")]


def test_srv_targets_follow_the_question_domain_case(names):
    # Consul builds generated names under the domain as the question spelled it
    # (getResponseDomain), and the glue carries exactly the target's name.
    res = dig(names.dns_port, "_web._v1.service.CoNsUl", "SRV")
    assert res.answer[0][0] == "_web._v1.service.CoNsUl."
    assert srv_records(res) == [(1, 1, 80, "dnsn1.node.dc1.CoNsUl.")]
    assert res.of_type("A", "additional") == [("dnsn1.node.dc1.CoNsUl.", 0, "A", "10.10.0.1")]


# ===================================================================================== health

def test_critical_instances_are_left_out(agent):
    register(agent, "hc1", "10.12.0.1", service={"ID": "hc1", "Service": "hc", "Port": 1})
    register(agent, "hc2", "10.12.0.2", service={"ID": "hc2", "Service": "hc", "Port": 2},
             check={"CheckID": "hc2-chk", "Name": "c", "Status": "critical", "ServiceID": "hc2"})
    register(agent, "hc3", "10.12.0.3", service={"ID": "hc3", "Service": "hc", "Port": 3},
             check={"CheckID": "hc3-chk", "Name": "w", "Status": "warning", "ServiceID": "hc3"})
    assert dig(agent.dns_port, "hc.service.consul", "A").rdatas("A") == ["10.12.0.1",
                                                                       "10.12.0.3"]
    assert [r[2] for r in srv_records(dig(agent.dns_port, "hc.service.consul", "SRV"))] == [1, 3]
    # Only critical instances: no such name.
    register(agent, "hc4", "10.12.0.4", service={"ID": "hc4", "Service": "allcrit", "Port": 4},
             check={"CheckID": "hc4-chk", "Name": "c", "Status": "critical", "ServiceID": "hc4"})
    assert_nxdomain_with_soa(dig(agent.dns_port, "allcrit.service.consul", "A"))


def test_a_critical_node_check_removes_all_its_instances(agent):
    register(agent, "sick", "10.12.1.1", service={"ID": "nc1", "Service": "nodechk", "Port": 1})
    register(agent, "sick", "10.12.1.1", service={"ID": "nc2", "Service": "nodechk2", "Port": 2})
    register(agent, "well", "10.12.1.2", service={"ID": "nc3", "Service": "nodechk", "Port": 3})
    assert dig(agent.dns_port, "nodechk.service.consul", "A").rdatas("A") == ["10.12.1.1",
                                                                            "10.12.1.2"]
    register(agent, "sick", "10.12.1.1",
             check={"CheckID": "node-down", "Name": "node", "Status": "critical"})
    assert dig(agent.dns_port, "nodechk.service.consul", "A").rdatas("A") == ["10.12.1.2"]
    assert_nxdomain_with_soa(dig(agent.dns_port, "nodechk2.service.consul", "A"))
    # The node itself still resolves: health is about services.
    assert dig(agent.dns_port, "sick.node.consul", "A").rdatas("A") == ["10.12.1.1"]


def test_a_failed_ttl_check_takes_effect_at_once(agent):
    r = agent.put("/v1/agent/service/register",
                  json={"Name": "ttlsvc", "ID": "ttlsvc1", "Port": 9,
                        "Check": {"TTL": "60s", "Status": "passing"}})
    assert r.status_code == 200, r.text
    name = "ttlsvc.service.consul"
    assert dig(agent.dns_port, name, "SRV").status == "NOERROR"
    assert agent.put("/v1/agent/check/fail/service:ttlsvc1").status_code == 200
    assert_nxdomain_with_soa(dig(agent.dns_port, name, "SRV"))
    assert agent.put("/v1/agent/check/warn/service:ttlsvc1").status_code == 200
    assert srv_records(dig(agent.dns_port, name, "SRV"))[0][2] == 9
    assert agent.put("/v1/agent/check/pass/service:ttlsvc1").status_code == 200
    assert dig(agent.dns_port, name, "A").status == "NOERROR"


def test_maintenance_mode_removes_the_instance(agent):
    r = agent.put("/v1/agent/service/register", json={"Name": "maintsvc", "ID": "m1", "Port": 5})
    assert r.status_code == 200, r.text
    name = "maintsvc.service.consul"
    assert dig(agent.dns_port, name, "A").status == "NOERROR"
    assert agent.put("/v1/agent/service/maintenance/m1",
                     params={"enable": "true", "reason": "test"}).status_code == 200
    assert_nxdomain_with_soa(dig(agent.dns_port, name, "A"))
    assert agent.put("/v1/agent/service/maintenance/m1",
                     params={"enable": "false"}).status_code == 200
    assert dig(agent.dns_port, name, "A").status == "NOERROR"


def test_catalog_changes_are_visible_on_the_next_query(agent):
    p = agent.dns_port
    # A miss first, so a remembered negative answer would show.
    assert_nxdomain_with_soa(dig(p, "chg.service.consul", "A"))
    assert_nxdomain_with_soa(dig(p, "chgnode.node.consul", "A"))
    register(agent, "chgnode", "10.12.2.1", service={"ID": "chg1", "Service": "chg", "Port": 1})
    assert dig(p, "chg.service.consul", "A").rdatas("A") == ["10.12.2.1"]
    assert dig(p, "chgnode.node.consul", "A").rdatas("A") == ["10.12.2.1"]
    register(agent, "chgnode", "10.12.2.2", service={"ID": "chg1", "Service": "chg", "Port": 1})
    assert dig(p, "chg.service.consul", "A").rdatas("A") == ["10.12.2.2"]
    assert dig(p, "-x", "10.12.2.2").rdatas("PTR") == ["chgnode.node.dc1.consul."]
    deregister(agent, "chgnode", "chg1")
    assert_nxdomain_with_soa(dig(p, "chg.service.consul", "A"))
    deregister(agent, "chgnode")
    assert_nxdomain_with_soa(dig(p, "chgnode.node.consul", "A"))


# ======================================================================================= EDNS0

def test_edns_reply_echoes_the_client_buffer_size(names):
    res = dig(names.dns_port, "web.service.consul", "A", "+bufsize=1500")
    assert res.edns == {"version": 0, "udp": 1500}
    res = dig(names.dns_port, "nope.service.consul", "A", "+bufsize=4000")
    assert res.status == "NXDOMAIN" and res.edns == {"version": 0, "udp": 4000}
    res = dig(names.dns_port, "web.service.consul", "A", "+noedns")
    assert res.edns is None and len(res.answer) == 2


def test_edns_version_is_ignored(names):
    res = dig(names.dns_port, "web.service.consul", "A", "+edns=1", "+noednsneg")
    assert res.status == "NOERROR" and len(res.answer) == 2
    assert res.edns["version"] == 0


# ============================================================================ malformed input

@pytest.fixture(scope="module", autouse=True)
def idle_tcp(agent):
    """A TCP connection that never sends anything, opened when the module starts, so the
    server's idle timeout runs while the other tests do (see the module's last test)."""
    s = socket.create_connection(("127.0.0.1", agent.dns_port), timeout=2)
    yield s, time.monotonic()
    s.close()


def test_a_short_datagram_gets_no_reply(agent):
    assert udp_exchange(agent.dns_port, b"\x12\x34\x01", timeout=0.5) is None
    assert dig(agent.dns_port, "consul.", "SOA").status == "NOERROR"


def test_garbage_after_the_header_is_formerr_with_the_same_id(agent):
    packet = struct.pack(">HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0) + b"\x07garb"
    h = parse_header(udp_exchange(agent.dns_port, packet))
    assert (h["id"], h["qr"], h["opcode"], h["rcode"], h["rd"]) == (0xBEEF, 1, 0, FORMERR, 1)
    assert h["aa"] == 0


def test_a_response_packet_gets_no_reply(agent):
    packet = build_query("consul.", 6, qid=0x1111, flags=0x8100)
    assert udp_exchange(agent.dns_port, packet, timeout=0.5) is None
    # The same packet as a query is answered.
    h = parse_header(udp_exchange(agent.dns_port, build_query("consul.", 6, qid=0x1111)))
    assert (h["id"], h["rcode"], h["an"]) == (0x1111, 0, 1)


def test_two_questions_are_formerr(agent):
    packet = build_query(qid=0x2222, qdcount=2, questions=[("consul.", 6), ("consul.", 2)])
    h = parse_header(udp_exchange(agent.dns_port, packet))
    assert (h["id"], h["qr"], h["rcode"], h["an"], h["ns"]) == (0x2222, 1, FORMERR, 0, 0)
    packet = build_query(qid=0x2223, qdcount=0, questions=[])
    assert parse_header(udp_exchange(agent.dns_port, packet))["rcode"] == FORMERR


def test_opcode_status_is_notimp(agent):
    packet = build_query("consul.", 6, qid=0x3333, flags=(2 << 11) | 0x0100)
    h = parse_header(udp_exchange(agent.dns_port, packet))
    assert (h["id"], h["qr"], h["opcode"], h["rcode"]) == (0x3333, 1, 2, NOTIMP)


def test_axfr_is_notimp(agent):
    h = parse_header(udp_exchange(agent.dns_port, build_query("consul.", 252, qid=0x4444)))
    assert (h["id"], h["rcode"], h["an"], h["ns"]) == (0x4444, NOTIMP, 0, 0)


def test_random_junk_never_stops_the_server(agent):
    rng = random.Random(20240607)
    valid = build_query("web.service.consul.", 33)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        for i in range(400):
            if i % 2:
                junk = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
            else:   # a real query with a few bytes changed
                junk = bytearray(valid)
                for _ in range(rng.randrange(1, 6)):
                    junk[rng.randrange(len(junk))] = rng.randrange(256)
                junk = bytes(junk)
            try:
                s.sendto(junk, ("127.0.0.1", agent.dns_port))
            except BlockingIOError:
                time.sleep(0.01)
    assert dig(agent.dns_port, "consul.", "SOA").status == "NOERROR"
    assert dig(agent.dns_port, "consul.", "SOA", "+tcp").status == "NOERROR"
    assert agent.proc.poll() is None


def test_tcp_with_a_short_message_then_close(agent):
    with socket.create_connection(("127.0.0.1", agent.dns_port), timeout=2) as s:
        s.sendall(struct.pack(">H", 1000) + build_query("consul.", 6)[:20])
    with socket.create_connection(("127.0.0.1", agent.dns_port), timeout=2) as s:
        s.sendall(b"\x00")   # half a length prefix
    # A well-formed TCP exchange right after.
    with socket.create_connection(("127.0.0.1", agent.dns_port), timeout=2) as s:
        q = build_query("consul.", 6, qid=0x5555)
        s.sendall(struct.pack(">H", len(q)) + q)
        n = struct.unpack(">H", s.recv(2))[0]
        data = b""
        for _ in range(100):
            if len(data) >= n:
                break
            data += s.recv(n - len(data))
        h = parse_header(data)
        assert (h["id"], h["rcode"], h["an"]) == (0x5555, 0, 1)
    assert dig(agent.dns_port, "consul.", "SOA", "+tcp").status == "NOERROR"


# ===================================================================================== ports

def _socket_inodes(pid):
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def _sockets(tables, listening_only=False):
    """{inode: local port} of the sockets in /proc/net tables (TCP: LISTEN ones only)."""
    out = {}
    for table in tables:
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if listening_only and cols[3] != "0A":
                        continue
                    out[cols[9]] = int(cols[1].rsplit(":", 1)[1], 16)
        except FileNotFoundError:
            pass
    return out


def test_dns_port_minus_one_disables_dns():
    a = Agent(["-dev", "-dns-port", "-1"])
    try:
        assert a.get("/v1/status/leader").status_code == 200
        mine = _socket_inodes(a.proc.pid)
        udp = _sockets(("/proc/net/udp", "/proc/net/udp6"))
        tcp = _sockets(("/proc/net/tcp", "/proc/net/tcp6"), listening_only=True)
        # No DNS port: UDP only for gossip; TCP for HTTP, server RPC and gossip push/pull.
        assert [udp[i] for i in mine if i in udp] == [a.serf_lan_port]
        assert sorted(tcp[i] for i in mine if i in tcp) == sorted(
            [a.http_port, a.server_port, a.serf_lan_port])
    finally:
        a.stop()


def test_an_idle_tcp_connection_is_closed_by_the_server(idle_tcp):
    # Last in the module: the connection has been idle since the module's first test.
    s, opened = idle_tcp
    s.settimeout(max(0.1, opened + 15 - time.monotonic()))
    try:
        data = s.recv(1)
    except ConnectionResetError:
        data = b""
    except socket.timeout:
        data = None
    assert data == b"", "still open after 15 s"
    assert time.monotonic() - opened <= 15.5
