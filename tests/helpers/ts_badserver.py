#!/usr/bin/python3
"""A misbehaving SCRAPI service for client tests (Python stdlib only).

  ts_badserver.py PORT RECEIPT_FILE KEYS_FILE [CERT.pem KEY.pem]   (with a cert: HTTPS)

The first path segment picks the behaviour; clients use http://127.0.0.1:PORT/<mode> as the
service URL, so POST /<mode>/entries and GET /<mode>/... :
  ok        201 with RECEIPT_FILE
  slow      sleeps 30 s before answering
  flaky     503 (Retry-After: 0, problem details) twice per client run, then 201
  ratelimit 429 with Retry-After: 1 once, then 201
  async     303 -> GET: 302 once, then 200 with the receipt and a final Location
  loop      303 -> GET: 302 forever (Retry-After: 0)
  legacy    202 + CBOR operation {"operationId","status":"running"} and Location
            /legacy/operations/1 -> "running" once, then "succeeded" with entryId 7 ->
            GET /legacy/entries/7 gives the receipt
  huge      201 with a 4 MiB body
  garbage   201 with bytes that are not a receipt
  reject    400 concise problem details {-1: "Rejected", -2: "issuer not allowed by policy"}
  redirect  307 to http://203.0.113.1/entries (must not be followed)
  lost      303 -> GET: 404 "Operation Not Found" (the service restarted); the second POST
            gets 201
  foreign   303 to http://127.0.0.2:PORT/... (another origin: must not be polled)
  html      500 text/html error page, every time
  /<mode>/.well-known/scitt-keys returns KEYS_FILE.
Counters are per mode and reset by GET /<mode>/reset.
"""
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, RECEIPT, KEYS = int(sys.argv[1]), open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
COUNT = {}
LOCK = threading.Lock()


def problem(title, detail):
    # {-1: title, -2: detail} in CBOR, by hand (no cbor2 needed)
    def tstr(s):
        b = s.encode()
        assert len(b) < 256
        return (bytes([0x60 | len(b)]) if len(b) < 24 else bytes([0x78, len(b)])) + b
    return b"\xa2\x20" + tstr(title) + b"\x21" + tstr(detail)


def cbor_map_str(d):
    out = bytes([0xa0 | len(d)])
    for k, v in d.items():
        for s in (k, v):
            b = s.encode()
            out += bytes([0x60 | len(b)]) + b
    return out


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, status, body=b"", ctype=None, headers=()):
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except BrokenPipeError:
            pass

    def bump(self, key):
        with LOCK:
            COUNT[key] = COUNT.get(key, 0) + 1
            return COUNT[key]

    def do_GET(self):
        parts = self.path.split("/")
        mode = parts[1] if len(parts) > 1 else ""
        rest = "/".join(parts[2:])
        if rest == ".well-known/scitt-keys":
            return self.send(200, KEYS, "application/cbor")
        if rest == "reset":
            with LOCK:
                for k in list(COUNT):
                    if k.startswith(mode):
                        del COUNT[k]
            return self.send(200, b"reset\n", "text/plain")
        if mode == "async":
            if self.bump("async-get") == 1:
                return self.send(302, headers=[("Location", self.path), ("Retry-After", "0")])
            return self.send(200, RECEIPT, "application/cose", [("Location", "/async/entries/42")])
        if mode == "lost":
            return self.send(404, problem("Operation Not Found", "unknown operation"),
                             "application/concise-problem-details+cbor")
        if mode == "loop":
            return self.send(302, headers=[("Location", self.path), ("Retry-After", "0")])
        if mode == "legacy":
            if rest.startswith("operations/"):
                if self.bump("legacy-op") == 1:
                    return self.send(200, cbor_map_str({"operationId": "1", "status": "running"}), "application/cbor",
                                     [("Retry-After", "0")])
                return self.send(200, cbor_map_str({"operationId": "1", "status": "succeeded", "entryId": "7"}),
                                 "application/cbor")
            if rest == "entries/7":
                return self.send(200, RECEIPT, "application/cose")
        return self.send(404, problem("Not Found", "no such resource"), "application/concise-problem-details+cbor")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        if n:
            self.rfile.read(n)
        mode = self.path.split("/")[1]
        if mode == "ok":
            return self.send(201, RECEIPT, "application/cose", [("Location", "/ok/entries/1")])
        if mode == "slow":
            time.sleep(30)
            return self.send(201, RECEIPT, "application/cose")
        if mode == "flaky":
            if self.bump("flaky") <= 2:
                return self.send(503, problem("Service Unavailable", "warming up"),
                                 "application/concise-problem-details+cbor", [("Retry-After", "0")])
            return self.send(201, RECEIPT, "application/cose")
        if mode == "ratelimit":
            if self.bump("ratelimit") == 1:
                return self.send(429, problem("Too Many Requests", "slow down"),
                                 "application/concise-problem-details+cbor", [("Retry-After", "1")])
            return self.send(201, RECEIPT, "application/cose")
        if mode == "lost" and self.bump("lost") > 1:
            return self.send(201, RECEIPT, "application/cose")
        if mode in ("async", "loop", "lost"):
            return self.send(303, headers=[("Location", "/%s/entries/tmp123" % mode), ("Retry-After", "0")])
        if mode == "legacy":
            return self.send(202, cbor_map_str({"operationId": "1", "status": "running"}), "application/cbor",
                             [("Location", "/legacy/operations/1"), ("Retry-After", "0")])
        if mode == "huge":
            return self.send(201, b"\xd2" * (4 << 20), "application/cose")
        if mode == "garbage":
            return self.send(201, b"\xd2\x84this is not a receipt", "application/cose")
        if mode == "reject":
            return self.send(400, problem("Rejected", "issuer not allowed by policy"),
                             "application/concise-problem-details+cbor")
        if mode == "foreign":
            return self.send(303, headers=[("Location", "http://127.0.0.2:%d/ok/entries/1" % PORT)])
        if mode == "redirect":
            return self.send(307, headers=[("Location", "http://203.0.113.1/entries")])
        if mode == "html":
            return self.send(500, b"<html><body>Internal Server Error</body></html>", "text/html")
        return self.send(404, problem("Not Found", "unknown mode"), "application/concise-problem-details+cbor")


ThreadingHTTPServer.daemon_threads = True
srv = ThreadingHTTPServer(("127.0.0.1", PORT), H)
if len(sys.argv) == 6:
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
