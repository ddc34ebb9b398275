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

Two more modes change only answers of several files (X-M4F-Sizes), in
their second file: "flip" flips one of its bytes and leaves the headers
as sent (its hash gives it away), "forgebundle" changes its bytes and
its X-M4F-Digests entry to match them (only the signature can).
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


def mode():
    try:
        with open(MODE) as f:
            return f.read().strip()
    except OSError:
        return ""


def forging():
    return mode() == "forge"


def bundle(how, body, out):
    """The second file of a bundle answer changed as how says."""
    hdr = {k.lower(): v for k, v in out}
    sizes = [int(x) for x in hdr["x-m4f-sizes"].split(",")]
    if len(sizes) < 2 or sizes[1] == 0:
        return body, out
    a = sizes[0]
    second = bytes((x ^ 0x5A) for x in body[a:a + sizes[1]])
    if how == "flip":
        second = bytes([body[a] ^ 1]) + body[a + 1:a + sizes[1]]
    body = body[:a] + second + body[a + sizes[1]:]
    if how == "forgebundle":
        d = hdr["x-m4f-digests"].split(",")
        d[1] = hashlib.sha256(second).hexdigest()
        out = [(k, ",".join(d) if k.lower() == "x-m4f-digests" else v)
               for k, v in out]
    count()
    return body, out


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
        how = mode()
        if (how in ("flip", "forgebundle") and self.command == "GET" and
                r.status == 200 and "x-m4f-sizes" in names):
            body, out = bundle(how, body, out)
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
