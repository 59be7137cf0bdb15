#!/usr/bin/env python3
"""A small stock quote service for the sluice tool-gateway example.

Serves the latest price of a ticker from a CSV file (symbol,date,price[,currency]) on
127.0.0.1 only:

    GET /quote?symbol=INTC   -> 200 {"symbol": "INTC", "price": "24.31", "currency": "USD",
                                     "as_of": "2026-11-27", "source": "prices.csv"}
                                404 unknown symbol, 400 bad symbol, 401 without the token
    GET /healthz             -> 200 ok

With --token-file, every /quote request must carry "Authorization: Bearer <token>" (the
credential sluice releases to an attested host). Python standard library only.
"""
import argparse
import csv
import hmac
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SYMBOL = re.compile(r"^[A-Z]{1,5}$")


def load_prices(path):
    latest = {}
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if not row or row[0].startswith("#") or row[0] == "symbol":
                continue
            symbol, date, price = row[0].strip(), row[1].strip(), row[2].strip()
            currency = row[3].strip() if len(row) > 3 and row[3].strip() else "USD"
            if symbol not in latest or date > latest[symbol]["as_of"]:
                latest[symbol] = {"symbol": symbol, "price": price, "currency": currency, "as_of": date}
    return latest


def make_handler(prices, token, source):
    class Handler(BaseHTTPRequestHandler):
        server_version = "sluice-quote/1"

        def log_message(self, fmt, *args):
            sys.stderr.write("quote_service: %s\n" % (fmt % args))

        def reply(self, status, body):
            data = (json.dumps(body) + "\n").encode() if not isinstance(body, bytes) else body
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if not isinstance(body, bytes) else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if len(self.path) > 256:
                return self.reply(414, {"error": "request target too long"})
            url = urlsplit(self.path)
            if url.path == "/healthz":
                return self.reply(200, b"ok\n")
            if url.path != "/quote":
                return self.reply(404, {"error": "not found"})
            if token is not None:
                got = self.headers.get("Authorization", "")
                if not hmac.compare_digest(got.encode(), ("Bearer " + token).encode()):
                    return self.reply(401, {"error": "missing or wrong credential"})
            symbol = parse_qs(url.query).get("symbol", [""])[0]
            if not SYMBOL.match(symbol):
                return self.reply(400, {"error": "symbol must be 1-5 capital letters"})
            if symbol not in prices:
                return self.reply(404, {"error": "unknown symbol %s" % symbol})
            return self.reply(200, dict(prices[symbol], source=source))

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8931)
    ap.add_argument("--csv", default=__file__.rsplit("/", 1)[0] + "/prices.csv")
    ap.add_argument("--token-file", help="require 'Authorization: Bearer <contents>'")
    ap.add_argument("--ready-file", help="write the port here once listening")
    a = ap.parse_args()
    token = None
    if a.token_file:
        with open(a.token_file) as f:
            token = f.read().strip()
    prices = load_prices(a.csv)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), make_handler(prices, token, a.csv.rsplit("/", 1)[-1]))
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write("%d\n" % srv.server_address[1])
    sys.stderr.write("quote_service: %d symbols on 127.0.0.1:%d\n" % (len(prices), srv.server_address[1]))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
