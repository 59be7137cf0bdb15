#!/usr/bin/env python3
"""A network attacker between a QEMU guest and sluice-verifier, for the replay boot test.

    replay_proxy.py LISTEN_PORT VERIFIER_PORT DIR

Forwards HTTP requests from 127.0.0.1:LISTEN_PORT to 127.0.0.1:VERIFIER_PORT unchanged, except
POST /v1/attest, which depends on the mode in DIR/mode (read on every request):
  pass             forward (the default)
  record           forward, and keep the request and the answer in DIR/attest.req / attest.resp
  replay-evidence  send the recorded request (evidence, statement and receipt of an earlier boot)
                   instead of this boot's, and return the verifier's answer
  replay-verdict   do not ask the verifier: answer with the recorded verdict of the earlier boot
Every handled /v1/attest is logged to DIR/log. No redirects are followed; bodies are capped."""
import http.client
import http.server
import json
import os
import sys

MAX = 32 << 20
listen_port, upstream_port, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]


def mode():
    try:
        with open(os.path.join(d, "mode")) as f:
            return f.read().strip() or "pass"
    except OSError:
        return "pass"


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def forward(self, body):
        c = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
        c.request(self.command, self.path, body=body if body is not None else None, headers=hdrs)
        r = c.getresponse()
        data = r.read(MAX + 1)[:MAX]
        out = (r.status, r.getheader("Content-Type", "application/octet-stream"), data)
        c.close()
        return out

    def answer(self, status, ctype, data):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(n, MAX)) if n else None
        m = mode()
        if self.command == "POST" and self.path == "/v1/attest" and m != "pass":
            with open(os.path.join(d, "log"), "a") as f:
                f.write(m + "\n")
            if m == "record":
                out = self.forward(body)
                with open(os.path.join(d, "attest.req"), "wb") as f:
                    f.write(body or b"")
                with open(os.path.join(d, "attest.resp"), "w") as f:
                    json.dump({"status": out[0], "ctype": out[1], "body": out[2].decode("latin-1")}, f)
                return self.answer(*out)
            if m == "replay-evidence":
                with open(os.path.join(d, "attest.req"), "rb") as f:
                    return self.answer(*self.forward(f.read()))
            if m == "replay-verdict":
                with open(os.path.join(d, "attest.resp")) as f:
                    r = json.load(f)
                return self.answer(r["status"], r["ctype"], r["body"].encode("latin-1"))
        return self.answer(*self.forward(body))

    do_GET = handle_any
    do_POST = handle_any


http.server.ThreadingHTTPServer.allow_reuse_address = True
srv = http.server.ThreadingHTTPServer(("127.0.0.1", listen_port), H)
srv.serve_forever()
