#!/usr/bin/env python3
"""A man in the middle who knows the protocol but not the cluster key.

    forger.py PORT ORIGIN_PORT MODEFILE

Forwards each request, signature and all, to m4f-origin on ORIGIN_PORT
and passes its answer back, except when MODEFILE says "forge": then every
file answer (200 or 206 with a Repr-Digest or Content-Digest) has its
body replaced by other bytes of the same length and its digest fields
recomputed to match them, and every listing (JSON with X-M4F-SHA256) has
each file's size changed by one with its body digest recomputed: a whole,
consistent answer that only the origin's signature can give away. Counts
the answers it forged in MODEFILE.count.
"""
import base64
import hashlib
import http.client
import http.server
import json
import os
import sys
import threading

PORT, OPORT, MODE = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


def forging():
    try:
        with open(MODE) as f:
            return f.read().strip() == "forge"
    except OSError:
        return False


LOCK = threading.Lock()


def count():
    with LOCK:
        bump()


def bump():
    n = 0
    try:
        with open(MODE + ".count") as f:
            n = int(f.read() or 0)
    except (OSError, ValueError):
        pass
    with open(MODE + ".count.new", "w") as f:
        f.write(str(n + 1))
    os.replace(MODE + ".count.new", MODE + ".count")


def sfv(b):
    return "sha-256=:%s:" % base64.b64encode(hashlib.sha256(b).digest()).decode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        c = http.client.HTTPConnection("127.0.0.1", OPORT, timeout=30)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        c.request(self.command, self.path, headers=hdrs)
        r = c.getresponse()
        body = r.read()
        out = [(k, v) for k, v in r.getheaders() if k.lower() not in HOP]
        names = {k.lower() for k, _ in out}
        if forging() and self.command == "GET":
            if r.status in (200, 206) and ("repr-digest" in names or
                                           "content-digest" in names):
                body = bytes((x ^ 0x5A) for x in body)
                d = sfv(body)
                out = [(k, d if k.lower() in ("repr-digest", "content-digest")
                        else v) for k, v in out]
                count()
            elif r.status == 200 and "x-m4f-sha256" in names:
                j = json.loads(body)
                for e in j.get("entries", []):
                    if e.get("type") == "f":
                        e["size"] += 1
                body = json.dumps(j).encode()
                h = hashlib.sha256(body).hexdigest()
                out = [(k, h if k.lower() == "x-m4f-sha256" else v)
                       for k, v in out]
                count()
        self.send_response(r.status)
        for k, v in out:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)
        c.close()

    do_HEAD = do_GET


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass    # a client that hung up: nothing to say


Server(("127.0.0.1", PORT), Handler).serve_forever()
