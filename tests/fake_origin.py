#!/usr/bin/env python3
"""A lying M4F origin for the fault tests (tests/it_faults_liar.sh).

Serves the folder ROOT under the URL path of its absolute path, as
m4f-origin does (docs/protocol.md): listings with paging, the feed (an
epoch, a seq and no events; long-polls by sleeping up to `wait`) and files
with byte ranges. By default it tells the truth. A lie, chosen with -m MODE
or by writing MODE (one word, optionally MODE:ARG) into the control file
given with -c (re-read on every request), applies to the folder SCOPE
(-s, default "lie") and everything below it; the rest stays honest so the
mount and the other folders keep working.

Modes:
  honest     no lie
  hash       file bodies under SCOPE have one byte flipped (the listed
             sha256 is the real file's)
  long       listed size = real + 1000; Content-Range/Length and the body
             agree with the lie (the body is padded with zeros)
  short      listed size = real - 1000; headers agree, body truncated
  longraw    listed size = real + 1000; files are served as they are
  shortraw   listed size = real - 1000; files are served as they are
  badjson    listings of SCOPE are cut in the middle of the JSON
  badtype    sizes are strings
  negsize    sizes are negative
  hugesize   sizes are 2^62
  nofield    file entries lack sha256 and size
  loop       every page is the same one page with the same "next"
  endless    pages never end: "next" moves forward forever
  hostile:N  listings of SCOPE carry the hostile name number N (see
             HOSTILE) among the real entries, and the feed announces it
             (as SCOPE/NAME and as NAME) as an added file
  nullhash   files under SCOPE are listed with "sha256": null (the origin
             does not know their hash yet); with -d their answers carry
             the digests computed from the bytes sent
  nulldigest as nullhash, and their answers carry no digest at all
  baddigest  as nullhash, and their answers' Repr-Digest and
             Content-Digest are of other bytes (the body is right)
  nullflip   as nullhash, with the bodies of "hash" and digests of the
             real bytes (a corrupting link after the origin)
  busy       every other file request under SCOPE is answered 503 with
             Retry-After: 1

With -d answers carry the digests of docs/protocol.md: Repr-Digest on a
whole file (its known hash, or computed from the bytes sent up to 64
MiB), Content-Digest on a range (of the bytes sent, up to 64 MiB). With
-k KEYFILE every answer but a 401 is signed (X-M4F-Signature) for the
request's Authorization sig=, as the origin does with a cluster key (no
request is checked). -M BYTES lists files bigger than that with
"sha256": null (the origin never hashes to answer a listing). -g
NAME:SIZE[:HEX] adds a generated file NAME of SIZE bytes at the root (4
KiB pages of repeated SHA-256s of the page number, see gen_bytes), listed
with the hash HEX (a made-up one: the whole is never checked) or none. -S FILE keeps "requests N bytes M" (body bytes sent) up
to date in FILE. Files are read from disk only for the range answered.

With -b N the root also holds a folder "big" of N generated files
(f0000000 ...; each file's content is its own name and a newline), listed
by pages of at most `limit` entries.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOSTILE = [
    "..", ".", "a/../../etc", "x//y", "nul\u0000name", "ctl\u0001name",
    "tab\tname", "nl\nname", "del\u007fname", "n" * 300, "/etc/evil",
    "", "../../../../tmp/evil", "trail/",
]
EPOCH = "fake%08x" % (int(time.time()) & 0xffffffff)
SEQ = 100
BIG_MTIME = 1700000000
DIGEST_MAX = 64 << 20
PAGE = 4096
NULL_MODES = ("nullhash", "nulldigest", "baddigest", "nullflip")


def gen_bytes(first, n):
    """Bytes [first, first + n) of a generated file: page p is
    sha256(str(p)) repeated."""
    out = bytearray()
    p = first // PAGE
    skip = first - p * PAGE
    while len(out) < skip + n:
        out += hashlib.sha256(str(p).encode()).digest() * (PAGE // 32)
        p += 1
    return bytes(out[skip:skip + n])


def digest_field(data):
    return "sha-256=:%s:" % base64.b64encode(
        hashlib.sha256(data).digest()).decode()


def key(name):
    """Paging order: component by component, '/' before every byte."""
    return tuple(c.encode() for c in name.split("/"))


class Origin:
    def __init__(self, args):
        self.root = os.path.abspath(args.root)
        self.export = self.root
        self.scope = args.scope
        self.mode = args.mode
        self.control = args.control
        self.big = args.big
        self.hashes = {}
        self.lock = threading.Lock()
        self.requests = 0
        self.sent = 0
        self.stats = args.stats
        self.digests = args.digests
        self.key = None
        if args.key:
            with open(args.key, "rb") as f:
                self.key = f.read().rstrip(b"\n")
        self.hash_max = args.hash_max
        self.gen = {}
        for g in args.gen or []:
            name, size, sha = (g.split(":") + [None])[:3]
            self.gen[name] = (int(size), sha)
        self.busy_n = 0

    def count(self, nbytes):
        with self.lock:
            self.requests += 1
            self.sent += nbytes
            if self.stats:
                with open(self.stats + ".new", "w") as f:
                    f.write("requests %d bytes %d\n" % (self.requests,
                                                        self.sent))
                os.replace(self.stats + ".new", self.stats)

    def current_mode(self):
        if self.control:
            try:
                with open(self.control) as f:
                    w = f.read().split()
                    if w:
                        return w[0]
            except OSError:
                pass
        return self.mode

    def in_scope(self, rel):
        return rel == self.scope or rel.startswith(self.scope + "/")

    def sha(self, path, st):
        k = (path, st.st_size, st.st_mtime_ns)
        with self.lock:
            h = self.hashes.get(k)
        if h is None:
            with open(path, "rb") as f:
                h = hashlib.sha256(f.read()).hexdigest()
            with self.lock:
                self.hashes[k] = h
        return h

    @staticmethod
    def big_content(i):
        return ("f%07d\n" % i).encode()

    def entry(self, rel_in_export, name, path, st, mode):
        if os.path.isdir(path):
            return {"name": name, "type": "d", "mtime": int(st.st_mtime)}
        size = st.st_size
        null = (self.in_scope(rel_in_export) and mode in NULL_MODES) or \
            (self.hash_max is not None and size > self.hash_max)
        e = {"name": name, "type": "f", "size": size,
             "mtime": int(st.st_mtime),
             "sha256": None if null else self.sha(path, st)}
        if self.in_scope(rel_in_export):
            if mode in ("long", "longraw"):
                e["size"] = size + 1000
            elif mode in ("short", "shortraw"):
                e["size"] = max(0, size - 1000)
            elif mode == "badtype":
                e["size"] = str(size)
            elif mode == "negsize":
                e["size"] = -5
            elif mode == "hugesize":
                e["size"] = 1 << 62
            elif mode == "nofield":
                del e["sha256"], e["size"]
        return e

    def walk(self, rel, recursive, mode):
        """Every entry below folder rel (pre-order), names relative to it."""
        out = []
        base = os.path.join(self.root, rel) if rel else self.root

        def visit(d, prefix):
            for n in sorted(os.listdir(d), key=lambda s: s.encode()):
                if n.startswith(".") or n.endswith(".tmp"):
                    continue
                p = os.path.join(d, n)
                name = prefix + n
                full = (rel + "/" if rel else "") + name
                if os.path.islink(p):
                    # As the origin lists links inside the export.
                    out.append({"name": name, "type": "l",
                                "mtime": int(os.lstat(p).st_mtime),
                                "target": os.readlink(p)})
                    continue
                st = os.stat(p)
                out.append(self.entry(full, name, p, st, mode))
                if recursive and os.path.isdir(p):
                    visit(p, name + "/")
        visit(base, "")
        if rel == "" and self.big > 0:
            out.append({"name": "big", "type": "d", "mtime": BIG_MTIME})
            out.sort(key=lambda e: key(e["name"]))
        if rel == "" and self.gen:
            for n, (size, sha) in self.gen.items():
                out.append({"name": n, "type": "f", "size": size,
                            "mtime": BIG_MTIME, "sha256": sha})
            out.sort(key=lambda e: key(e["name"]))
        return out

    def big_page(self, after, limit, prefix):
        """Entries of "big" after `after`, named with prefix, at most limit."""
        start = 0
        if after is not None and key(after) >= key(prefix + "f0000000"):
            a = after[len(prefix):]
            start = int(a[1:]) + 1 if a[1:].isdigit() else self.big
        ents = []
        for i in range(start, min(self.big, start + limit)):
            c = self.big_content(i)
            ents.append({"name": prefix + "f%07d" % i, "type": "f",
                         "size": len(c), "mtime": BIG_MTIME,
                         "sha256": hashlib.sha256(c).hexdigest()})
        return ents

    def page(self, ents, after, limit, big_prefix):
        """One page of ents (pre-order) with big's files spliced in."""
        if after is not None:
            ents = [e for e in ents if key(e["name"]) > key(after)]
        if big_prefix is not None:
            pre = [e for e in ents if key(e["name"]) <= key("big")]
            post = ents[len(pre):]
            ents = pre + self.big_page(after, limit + 1 - len(pre),
                                       big_prefix) + post
        page = ents[:limit]
        return page, page[-1]["name"] if len(ents) > limit else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-origin/1"

    def log_message(self, fmt, *a):
        if self.server.verbose:
            sys.stderr.write("%s\n" % (fmt % a))

    def sign(self, status, extra, json_sha):
        """X-M4F-Signature of an answer (answer_sign in common/answer.c)."""
        o = self.server.origin
        auth = self.headers.get("Authorization", "")
        reqsig = auth.partition("sig=")[2]
        hdr = dict(extra)
        rng = hdr.get("Content-Range", "") if status in (206, 416) else ""
        if status == 206:
            dig = hdr.get("Content-Digest", "")
        elif status == 200 and json_sha is not None:
            dig = json_sha
        elif status == 200:
            dig = hdr.get("Repr-Digest", "")
        else:
            dig = ""
        msg = "M4F-ANSWER\n%s\n%d\n%s\n%s" % (reqsig, status, rng, dig)
        return hmac.new(o.key, msg.encode(), hashlib.sha256).hexdigest()

    def reply(self, status, body, ctype="application/json", extra=(),
              length=None):
        """An answer; body is bytes, or (with length) a function of
        (offset, n) giving the body's bytes piece by piece."""
        o = self.server.origin
        if isinstance(body, str):
            body = body.encode()
        n = len(body) if length is None else length
        extra = list(extra)
        json_sha = None
        if ctype == "application/json":
            json_sha = hashlib.sha256(body).hexdigest()
            extra.append(("X-M4F-SHA256", json_sha))
        if o.key is not None and status != 401:
            extra.append(("X-M4F-Signature",
                          self.sign(status, extra, json_sha)))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(n))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        if length is None:
            self.wfile.write(body)
            o.count(len(body))
            return
        done = 0
        while done < n:
            piece = body(done, min(1 << 20, n - done))
            self.wfile.write(piece)
            done += len(piece)
        o.count(n)

    def error(self, status, text):
        self.reply(status, "%d %s\n" % (status, text), "text/plain")

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        o = self.server.origin
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        path = urllib.parse.unquote(u.path)
        mode = o.current_mode()
        api = "/m4f/v1/"
        try:
            if path.startswith(api + "list/"):
                return self.listing(o, path[len(api) + 4:], q, mode)
            if path.startswith(api + "feed/"):
                return self.feed(o, q, mode)
            return self.file(o, path, mode)
        except BrokenPipeError:
            pass

    def rel_of(self, o, path):
        if path == o.export:
            return ""
        if not path.startswith(o.export + "/"):
            return None
        rel = path[len(o.export) + 1:]
        for c in rel.split("/"):
            if c in ("", ".", "..") or c.startswith("."):
                return None
        return rel

    def listing(self, o, path, q, mode):
        rel = self.rel_of(o, path)
        if rel is None:
            return self.error(404, "not exported")
        recursive = q.get("recursive") == "1"
        after = q.get("after")
        try:
            limit = int(q.get("limit", "10000"))
        except ValueError:
            return self.error(400, "bad limit")
        if not 1 <= limit <= 100000:
            return self.error(400, "bad limit")
        # A listing lies when it is of SCOPE or covers it (recursive, from
        # above); names of SCOPE's entries then start with sprefix.
        scoped = o.in_scope(rel)
        sprefix = ""
        if not scoped and recursive and (rel == "" or
                                         o.scope.startswith(rel + "/")):
            scoped = True
            sprefix = o.scope[len(rel) + 1 if rel else 0:] + "/"
        doc = {"path": path}
        if o.big > 0 and rel == "big":
            doc["entries"], doc["next"] = o.page([], after, limit, "")
            return self.reply(200, json.dumps(doc))
        if scoped and mode == "endless":
            a = after[len(sprefix):] if after else ""
            start = int(a[1:]) + 1 if a[1:].isdigit() else 0
            doc["entries"] = [{"name": sprefix + "e%012d" % i, "type": "d",
                               "mtime": BIG_MTIME}
                              for i in range(start, start + limit)]
            doc["next"] = doc["entries"][-1]["name"]
            return self.reply(200, json.dumps(doc))
        full = os.path.join(o.root, rel) if rel else o.root
        if not os.path.isdir(full):
            return self.error(404 if not os.path.exists(full) else 400,
                              "not a folder")
        ents = o.walk(rel, recursive, mode)
        if scoped and mode.startswith("hostile:"):
            bad = HOSTILE[int(mode.split(":")[1])]
            ents.insert(0, {"name": sprefix + bad, "type": "f", "size": 4,
                            "mtime": BIG_MTIME, "sha256": "0" * 64})
        if scoped and mode == "loop":
            doc["entries"] = ents[:1]
            doc["next"] = ents[0]["name"] if ents else "a"
            return self.reply(200, json.dumps(doc))
        doc["entries"], doc["next"] = o.page(
            ents, after, limit,
            "big/" if o.big > 0 and rel == "" and recursive else None)
        body = json.dumps(doc)
        if scoped and mode == "badjson":
            body = body[:len(body) // 2]
        self.reply(200, body)

    def feed(self, o, q, mode):
        doc = {"epoch": EPOCH, "seq": SEQ, "reset": False, "events": []}
        if "since" in q:
            try:
                since = int(q["since"])
                wait = min(60, int(q.get("wait", "25")))
            except ValueError:
                return self.error(400, "bad parameter")
            doc["seq"] = since
            if mode.startswith("hostile:"):
                bad = HOSTILE[int(mode.split(":")[1])]
                for n in (bad, o.scope + "/" + bad):
                    doc["seq"] += 1
                    doc["events"].append({
                        "seq": doc["seq"], "op": "add", "type": "f",
                        "name": n, "size": 4, "mtime": BIG_MTIME,
                        "sha256": "0" * 64})
            else:
                time.sleep(max(0, wait))
        self.reply(200, json.dumps(doc))

    def file(self, o, path, mode):
        rel = self.rel_of(o, path)
        if rel is None or rel == "":
            return self.error(404, "not exported")
        scoped = o.in_scope(rel)
        if scoped and mode == "busy":
            with o.lock:
                o.busy_n += 1
                busy = o.busy_n % 2 == 1
            if busy:
                return self.reply(503, "503 busy\n", "text/plain",
                                  [("Retry-After", "1")])
        known = None            # the whole file's hash, when listed
        if o.big > 0 and rel.startswith("big/"):
            try:
                whole = o.big_content(int(rel[5:].lstrip("f")))
            except ValueError:
                return self.error(404, "no such file")
            size, mtime = len(whole), BIG_MTIME
            read = lambda a, n: whole[a:a + n]
            known = hashlib.sha256(whole).hexdigest()
        elif rel in o.gen:
            size, mtime = o.gen[rel][0], BIG_MTIME
            read = gen_bytes
        else:
            p = os.path.join(o.root, rel)
            if not os.path.isfile(p):
                return self.error(404, "no such file")
            st = os.stat(p)
            size, mtime = st.st_size, int(st.st_mtime)

            def read(a, n, p=p):
                with open(p, "rb") as f:
                    f.seek(a)
                    return f.read(n)
            if not (scoped and mode in NULL_MODES) and \
                    (o.hash_max is None or size <= o.hash_max):
                known = o.sha(p, st)
            real_size = size
            if scoped and mode == "long":
                size += 1000
                r0 = read
                read = lambda a, n: (r0(a, n) + b"\0" * n)[:n] \
                    if a + n > real_size else r0(a, n)
            elif scoped and mode == "short":
                size = max(0, size - 1000)
        flip = scoped and mode in ("hash", "nullflip") and size > 0
        clean = read

        def body(a, n):
            b = clean(a, n)
            i = size // 2
            if flip and a <= i < a + n:
                b = b[:i - a] + bytes([b[i - a] ^ 0x55]) + b[i - a + 1:]
            return b
        extra = [("Accept-Ranges", "bytes"), ("X-M4F-Mtime", str(mtime)),
                 ("Last-Modified", self.date_time_string(mtime))]
        digests = o.digests and not (scoped and mode == "nulldigest")
        wrong = scoped and mode == "baddigest"

        def field(a, n):
            data = clean(a, n)
            if wrong:
                data = b"not these bytes" + data
            return digest_field(data)
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and "," not in rng:
            a, _, b = rng[6:].partition("-")
            try:
                if a == "":
                    first, last = max(0, size - int(b)), size - 1
                else:
                    first = int(a)
                    last = min(int(b), size - 1) if b else size - 1
            except ValueError:
                first = None
            if first is not None:
                if first >= size:
                    return self.reply(416, "416 range not satisfiable\n",
                                      "text/plain",
                                      [("Content-Range", "bytes */%d" % size)])
                extra.append(("Content-Range",
                              "bytes %d-%d/%d" % (first, last, size)))
                n = last - first + 1
                if digests and n <= DIGEST_MAX:
                    extra.append(("Content-Digest", field(first, n)))
                if digests and known and not wrong:
                    extra.append(("Repr-Digest", digest_field_hex(known)))
                return self.reply(206, lambda a, k: body(first + a, k),
                                  "video/mp2t", extra, length=n)
        if digests and known and not wrong:
            extra.append(("Repr-Digest", digest_field_hex(known)))
        elif digests and size <= DIGEST_MAX:
            extra.append(("Repr-Digest", field(0, size)))
        self.reply(200, body, "video/mp2t", extra, length=size)


def digest_field_hex(h):
    return "sha-256=:%s:" % base64.b64encode(bytes.fromhex(h)).decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-r", dest="root", required=True)
    ap.add_argument("-p", dest="port", type=int, required=True)
    ap.add_argument("-m", dest="mode", default="honest")
    ap.add_argument("-c", dest="control")
    ap.add_argument("-s", dest="scope", default="lie")
    ap.add_argument("-b", dest="big", type=int, default=0)
    ap.add_argument("-d", dest="digests", action="store_true")
    ap.add_argument("-g", dest="gen", action="append")
    ap.add_argument("-k", dest="key")
    ap.add_argument("-M", dest="hash_max", type=int)
    ap.add_argument("-S", dest="stats")
    ap.add_argument("-v", dest="verbose", action="store_true")
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.origin = Origin(args)
    srv.verbose = args.verbose
    srv.serve_forever()


if __name__ == "__main__":
    main()
