"""A tiny upstream service for the proxy tests: an HTTP server on 127.0.0.1 whose behaviour a
test switches at run time.

    python proxy_upstream.py PORT NAME

Every answer is JSON naming the instance, the path and the request headers the proxy sent.
  GET /_mode/ok | /_mode/fail      switch to answering 200 (default) or 500 to everything else
  GET /slow?ms=N                   answer after N milliseconds
  GET /truncate                    promise 1000 bytes, send 10, close the connection
  GET /cached                      answer with Cache-Control: public, max-age=60
Every answer carries "n", the count of requests this instance has served.
"""
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

    def handle_any(self):
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
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
        if url.path == "/slow":
            ms = int(parse_qs(url.query).get("ms", ["1000"])[0])
            time.sleep(ms / 1000.0)
        status = 500 if STATE["mode"] == "fail" else 200
        self.answer(status, {"instance": NAME, "path": self.path, "method": self.command,
                             "body": body.decode(errors="replace"),
                             "headers": {k.lower(): v for k, v in self.headers.items()}})

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.allow_reuse_address = True
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
