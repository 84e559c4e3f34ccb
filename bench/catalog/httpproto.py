"""Minimal HTTP/1.1 client pieces for the catalog benchmarks (stdlib asyncio only).

`Conn` is an asyncio.Protocol with an incremental response parser that never buffers a body
it is not asked to keep: a multi-megabyte `/v1/health/service` answer is counted and dropped
as it streams in, so 1,000 watchers do not hold 1,000 copies of it. It understands
Content-Length, chunked (also as an endless stream: `on_stream_data` gets every chunk's bytes,
used for etcd's streaming watch) and read-until-close bodies.

Callbacks run inside `data_received`, i.e. the moment the client's event loop has the last byte.
"""
import asyncio
import os
import time

_now = time.monotonic


class Conn(asyncio.Protocol):
    """One keep-alive connection. `on_response(conn, status, headers, body_len, body, t)` is called
    for every complete response (`body` is bytes only when `keep_body` is set, else None);
    `on_stream_data(conn, data, t)`, when set, receives the raw bytes of every chunk of a chunked
    body as they arrive (for streams that never end)."""

    __slots__ = ("transport", "on_response", "on_stream_data", "keep_body", "state", "hb", "lb",
                 "remaining", "body", "body_len", "status", "headers", "head_len", "closed",
                 "bytes_in", "tag", "t_first", "_chunk_crlf")

    def __init__(self, on_response=None, keep_body=False, on_stream_data=None, tag=None):
        self.transport = None
        self.on_response = on_response
        self.on_stream_data = on_stream_data
        self.keep_body = keep_body
        self.state = 0          # 0 head, 1 CL body, 2 chunk size line, 3 chunk data, 4 chunk CRLF, 5 trailer, 6 until close
        self.hb = bytearray()
        self.lb = bytearray()
        self.remaining = 0
        self.body = None
        self.body_len = 0
        self.status = 0
        self.headers = None
        self.head_len = 0
        self.closed = asyncio.get_event_loop().create_future()
        self.bytes_in = 0
        self.tag = tag
        self.t_first = 0.0
        self._chunk_crlf = 0

    # -- asyncio.Protocol
    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if self.state == 6:
            self._finish(_now())
        if not self.closed.done():
            self.closed.set_result(exc)

    def write(self, data):
        self.transport.write(data)

    def close(self):
        if self.transport is not None:
            self.transport.close()

    def _finish(self, t):
        st, h, bl, body = self.status, self.headers, self.body_len, self.body
        self.state = 0
        self.body = None
        self.body_len = 0
        if self.on_response is not None:
            self.on_response(self, st, h, bl, body, t)

    def data_received(self, data):
        t = _now()
        n = len(data)
        self.bytes_in += n
        pos = 0
        while pos < n:
            st = self.state
            if st == 0:
                if not self.hb:
                    self.t_first = t
                start = len(self.hb)
                self.hb += data[pos:] if pos else data
                i = self.hb.find(b"\r\n\r\n", max(0, start - 3))
                if i < 0:
                    return
                used = i + 4 - start          # bytes of `data` (from pos) that belong to the head
                pos += used
                head = bytes(self.hb[:i])
                self.hb.clear()
                self.head_len = i + 4
                lines = head.split(b"\r\n")
                self.status = int(lines[0].split(b" ", 2)[1])
                h = {}
                for ln in lines[1:]:
                    k, _, v = ln.partition(b":")
                    h[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
                self.headers = h
                self.body_len = 0
                self.body = bytearray() if self.keep_body else None
                if "content-length" in h:
                    self.remaining = int(h["content-length"])
                    if self.remaining == 0:
                        self._finish(t)
                    else:
                        self.state = 1
                elif h.get("transfer-encoding", "").lower() == "chunked":
                    self.state = 2
                elif self.status in (204, 304) or 100 <= self.status < 200:
                    self._finish(t)
                else:
                    self.state = 6
            elif st == 1 or st == 6:
                take = n - pos if st == 6 else min(self.remaining, n - pos)
                if self.body is not None:
                    self.body += data[pos:pos + take]
                self.body_len += take
                pos += take
                if st == 1:
                    self.remaining -= take
                    if self.remaining == 0:
                        self._finish(t)
            elif st == 2 or st == 5:
                j = data.find(b"\n", pos)
                if j < 0:
                    self.lb += data[pos:]
                    return
                self.lb += data[pos:j + 1]
                pos = j + 1
                line = bytes(self.lb).strip()
                self.lb.clear()
                if st == 5:
                    if not line:               # end of trailers: response complete
                        self._finish(t)
                    continue
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    self.state = 5
                else:
                    self.remaining = size
                    self.state = 3
            elif st == 3:
                take = min(self.remaining, n - pos)
                chunk = data[pos:pos + take]
                if self.body is not None:
                    self.body += chunk
                self.body_len += take
                pos += take
                self.remaining -= take
                if self.on_stream_data is not None:
                    self.on_stream_data(self, chunk, t)
                if self.remaining == 0:
                    self.state = 4
                    self._chunk_crlf = 2
            elif st == 4:                      # CRLF after chunk data
                take = min(self._chunk_crlf, n - pos)
                pos += take
                self._chunk_crlf -= take
                if self._chunk_crlf == 0:
                    self.state = 2


async def connect(host, port, **kw):
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: Conn(**kw), host, port)
    return proto


def request(method, path, host, body=b"", extra=""):
    return (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


class Simple:
    """A request/response helper over one Conn (await `call`). Not for watchers."""

    def __init__(self, conn):
        self.conn = conn
        self.fut = None
        conn.on_response = self._done
        conn.keep_body = True

    def _done(self, conn, st, h, bl, body, t):
        if self.fut is not None and not self.fut.done():
            self.fut.set_result((st, h, bytes(body) if body is not None else b"", t))

    async def call(self, data, timeout=120):
        self.fut = asyncio.get_running_loop().create_future()
        self.conn.write(data)
        return await asyncio.wait_for(self.fut, timeout)


def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def proc_status(pid):
    d = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
            d[k] = int(v.split()[0])
    return d


def reset_hwm(pid):
    """Resets VmHWM to the current RSS (Linux: write 5 to clear_refs); False if not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


TICK = os.sysconf("SC_CLK_TCK")


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
