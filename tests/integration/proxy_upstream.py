"""A tiny upstream service for the proxy tests: an HTTP server on 127.0.0.1 whose behaviour a
test switches at run time.

    python proxy_upstream.py PORT NAME

Every answer is JSON naming the instance, the path and the request headers the proxy sent.
  GET /_mode/ok | /_mode/fail      switch to answering 200 (default) or 500 to everything else
  GET /slow?ms=N                   answer after N milliseconds
  GET /truncate                    promise 1000 bytes, send 10, close the connection
  GET /cached                      answer with Cache-Control: public, max-age=60
  GET /stream?chunks=N&gap_ms=M    a chunked answer: N chunks "chunk-i\n", M ms apart
  GET /ws (Upgrade: websocket)     101 with Sec-WebSocket-Accept, then echoes raw bytes
Every answer carries "n", the count of requests this instance has served, and the request
body's length and SHA-256 ("body" itself only when it is small). Chunked request bodies are
decoded.
"""
import base64
import hashlib
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PORT = int(sys.argv[1])
NAME = sys.argv[2]
STATE = {"mode": "ok", "n": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, obj, headers=()):
        STATE["n"] += 1
        obj["n"] = STATE["n"]
        body = json.dumps(obj).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("X-Instance", NAME)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        conn = self.connection
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)

    def stream(self, query):
        q = parse_qs(query)
        chunks = int(q.get("chunks", ["3"])[0])
        gap = int(q.get("gap_ms", ["100"])[0]) / 1000.0
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for i in range(chunks):
                if i:
                    time.sleep(gap)
                data = f"chunk-{i}\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def handle_any(self):
        url = urlparse(self.path)
        if (self.headers.get("Upgrade") or "").lower() == "websocket":
            return self.websocket()
        body = self.read_body()
        if url.path.startswith("/_mode/"):
            STATE["mode"] = url.path.rsplit("/", 1)[1]
            return self.answer(200, {"instance": NAME, "mode": STATE["mode"]})
        if url.path == "/truncate":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
            return
        if url.path == "/cached":
            return self.answer(200, {"instance": NAME, "path": self.path},
                               [("Cache-Control", "public, max-age=60")])
        if url.path == "/stream":
            return self.stream(url.query)
        if url.path == "/slow":
            ms = int(parse_qs(url.query).get("ms", ["1000"])[0])
            time.sleep(ms / 1000.0)
        status = 500 if STATE["mode"] == "fail" else 200
        self.answer(status, {"instance": NAME, "path": self.path, "method": self.command,
                             "body": body.decode(errors="replace") if len(body) <= 65536 else None,
                             "body_len": len(body),
                             "body_sha256": hashlib.sha256(body).hexdigest(),
                             "headers": {k.lower(): v for k, v in self.headers.items()}})

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.allow_reuse_address = True
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
