"""fakedns.py - the shared part of certfleet's fake DNS provider APIs (cloudflare.py, route53.py).

A fake is an HTTP server on 127.0.0.1 that implements only what certfleet's provider uses, checks
every request against the provider's documented format, answers 400 naming what is wrong when a
request is malformed (and counts it), keeps the zone in memory and publishes its TXT records to
pebble-challtestsrv, so that Pebble and `certfleet provider verify` see them in DNS.

Common options (each fake adds its own):
  --port N            listen on 127.0.0.1:N (0: any free port; the port is printed)
  --challtestsrv URL  publish TXT records there (POST /clear-txt, then /set-txt per value)
  --log FILE          one line per API request: monotonic ms when it arrived (its request line
                      read), method, path, status[, reason]; written once answered
  --fail-first N      answer the first N API requests with --fail-status (default 500)
  --retry-after S     send Retry-After: S with injected failures
  --latency MS        wait MS milliseconds before each answer
  --pid-file FILE     write the process id there once listening
Once listening, the fake prints "ready PORT" on stdout.

Test hooks (not logged, not counted as API requests), all JSON:
  GET  /__fake/stats    {"requests", "malformed", "auth_failures", "rejected", "writes",
                         "last_malformed"}
  GET  /__fake/records  {"<fqdn>": ["value", ...]} (values as DNS serves them, strings joined)
  POST /__fake/records  {"name": fqdn, "value": v [, "raw": true]} adds a record as if someone
                        else had written it (raw: the provider's legacy unquoted form)
"""

import argparse
import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import urllib.request


class Reject(Exception):
    """An API error answer. kind: 'malformed' (the request breaks the documented format),
    'auth' (credentials refused), 'rejected' (well-formed but refused, e.g. a conflict)."""

    def __init__(self, status, kind, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.code = code
        self.message = message
        self.headers = headers or {}


def malformed(message, code=None):
    return Reject(400, "malformed", code, message)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.malformed = 0
        self.auth_failures = 0
        self.rejected = 0
        self.writes = 0
        self.last_malformed = ""

    def count(self, kind, reason=""):
        with self.lock:
            self.requests += 1
            if kind == "malformed":
                self.malformed += 1
                self.last_malformed = reason
            elif kind == "auth":
                self.auth_failures += 1
            elif kind == "rejected":
                self.rejected += 1
            elif kind == "write":
                self.writes += 1

    def as_dict(self):
        with self.lock:
            return {"requests": self.requests, "malformed": self.malformed,
                    "auth_failures": self.auth_failures, "rejected": self.rejected,
                    "writes": self.writes, "last_malformed": self.last_malformed}


# ---- TXT data ----

LDH = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
                 r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


def check_fqdn(name, zone, what):
    """name must be a lower-case host name (no trailing dot) at or below zone."""
    if not isinstance(name, str) or not LDH.match(name):
        raise malformed(f"{what}: {name!r} is not a lower-case domain name without a trailing dot")
    if name != zone and not name.endswith("." + zone):
        raise malformed(f"{what}: {name!r} is not in zone {zone!r}")


def parse_quoted_strings(text, octal, what):
    """The character-strings of text, which must be one or more "quoted" strings separated by
    single spaces, with \\X and \\DDD (decimal) or \\ooo (octal) escapes, each at most 255
    octets. Raises malformed naming what."""
    strings = []
    i, n = 0, len(text)
    if n == 0:
        raise malformed(f"{what}: empty TXT data")
    while True:
        if i >= n or text[i] != '"':
            raise malformed(f"{what}: {text[:80]!r} is not a sequence of quoted character-strings")
        i += 1
        cur = bytearray()
        while True:
            if i >= n:
                raise malformed(f"{what}: unclosed quote in {text[:80]!r}")
            c = text[i]
            if c == '"':
                i += 1
                break
            if c == "\\":
                if i + 1 >= n:
                    raise malformed(f"{what}: lone backslash in {text[:80]!r}")
                nxt = text[i + 1]
                if nxt.isdigit():
                    digits = text[i + 1:i + 4]
                    base = 8 if octal else 10
                    try:
                        if len(digits) != 3:
                            raise ValueError
                        v = int(digits, base)
                    except ValueError:
                        raise malformed(f"{what}: bad numeric escape in {text[:80]!r}")
                    if v > 255:
                        raise malformed(f"{what}: numeric escape above 255 in {text[:80]!r}")
                    cur.append(v)
                    i += 4
                else:
                    cur.extend(nxt.encode())
                    i += 2
                continue
            if ord(c) < 0x20 or ord(c) > 0x7e:
                raise malformed(f"{what}: unescaped control or non-ASCII character in TXT data")
            cur.extend(c.encode())
            i += 1
        if len(cur) > 255:
            raise malformed(f"{what}: a character-string of {len(cur)} octets (at most 255)")
        strings.append(bytes(cur))
        if i == n:
            return strings
        if text[i] != " " or i + 1 >= n:
            raise malformed(f"{what}: character-strings must be separated by one space")
        i += 1


def quote_value(value):
    """value as quoted character-strings of at most 255 octets each."""
    parts = [value[k:k + 255] for k in range(0, len(value), 255)] or [""]
    return " ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)


# ---- publishing to pebble-challtestsrv ----

class Publisher:
    """Mirrors TXT RRsets into pebble-challtestsrv: /set-txt appends a value, /clear-txt drops
    every value of a host, so a changed RRset is cleared and written again."""

    def __init__(self, url, log):
        self.url = url.rstrip("/") if url else None
        self.lock = threading.Lock()
        self.log = log
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _post(self, path, obj):
        req = urllib.request.Request(self.url + path, data=json.dumps(obj).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with self.opener.open(req, timeout=5) as r:
            r.read()

    def publish(self, fqdn, values):
        if self.url is None:
            return
        host = fqdn.rstrip(".") + "."
        with self.lock:
            try:
                self._post("/clear-txt", {"host": host})
                for v in values:
                    self._post("/set-txt", {"host": host, "value": v})
            except OSError as e:
                self.log(f"# publishing {host} to challtestsrv failed: {e}")


# ---- the server ----

class App:
    """What a provider's fake implements. api() returns (status, headers, body bytes, kind)
    with kind 'ok' or 'write', or raises Reject; error_body() renders a Reject. A fake keeps
    self.zones keyed by zone name, self.lock and self.publisher."""

    def api(self, method, path, query, headers, body):
        raise NotImplementedError

    def error_body(self, rej):
        raise NotImplementedError

    def dump(self):
        raise NotImplementedError

    def seed(self, name, value, raw):
        """Adds a TXT value at name as if somebody else had written it, and publishes the name."""
        name = name.lower().rstrip(".")
        zone = self.zone_of(name)
        if zone is None:
            raise ValueError(f"{name} is in no zone of this fake")
        with self.lock:
            values = self.add_seeded(zone, name, value if raw else quote_value(value))
        self.publisher.publish(name, values)

    def add_seeded(self, zone, name, content):
        """Stores one TXT value (presentation form, quoted) at name; returns the values there.
        Called with self.lock held."""
        raise NotImplementedError

    def zone_of(self, name):
        """The longest zone of this fake that holds name, or None."""
        best = None
        for z in self.zones:
            if (name == z or name.endswith("." + z)) and (best is None or len(z) > len(best)):
                best = z
        return best

    def injected(self, status, retry_after):
        """The answer of an injected failure: (status, headers, body)."""
        rej = Reject(status, "injected", None, "injected failure")
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        ctype, body = self.error_body(rej)
        headers["Content-Type"] = ctype
        return status, headers, body


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "certfleet-fake"

    def log_message(self, fmt, *args):  # quiet: the --log file is the record
        pass

    def parse_request(self):
        # called as soon as the request line is read: the time a provider's limit counts
        self.received = time.monotonic()
        return super().parse_request()

    def _reply(self, status, headers, body):
        if self.server.opts.latency:
            time.sleep(self.server.opts.latency / 1000.0)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raise malformed("chunked request bodies are not expected")
        n = self.headers.get("Content-Length")
        if n is None:
            return b""
        try:
            n = int(n)
        except ValueError:
            raise malformed("Content-Length is not a number")
        return self.rfile.read(n)

    def _admin(self, method, path, body):
        app = self.server.app
        if path == "/__fake/stats" and method == "GET":
            return 200, self.server.stats.as_dict()
        if path == "/__fake/records" and method == "GET":
            return 200, app.dump()
        if path == "/__fake/records" and method == "POST":
            obj = json.loads(body or b"{}")
            app.seed(obj["name"], obj["value"], bool(obj.get("raw")))
            return 200, {"ok": True}
        return 404, {"error": "no such test hook"}

    def _handle(self):
        srv = self.server
        split = urllib.parse.urlsplit(self.path)
        path, query = split.path, split.query
        try:
            body = self._body()
        except Reject as rej:
            body, early = b"", rej
        else:
            early = None
        if path.startswith("/__fake/") and early is None:
            try:
                status, obj = self._admin(self.command, path, body)
            except (ValueError, KeyError, TypeError) as e:
                status, obj = 400, {"error": str(e)}
            self._reply(status, {"Content-Type": "application/json"}, json.dumps(obj).encode())
            return
        with srv.fail_lock:
            inject = srv.fail_left > 0
            if inject:
                srv.fail_left -= 1
        reason = ""
        if inject:
            status, headers, out = srv.app.injected(srv.opts.fail_status, srv.opts.retry_after)
            kind = "injected"
        else:
            try:
                if early is not None:
                    raise early
                status, headers, out, kind = srv.app.api(self.command, path, query, self.headers,
                                                         body)
            except Reject as rej:
                status, kind, reason = rej.status, rej.kind, rej.message
                ctype, out = srv.app.error_body(rej)
                headers = dict(rej.headers)
                headers["Content-Type"] = ctype
        srv.stats.count(kind, reason)
        line = f"{self.received * 1000:.3f} {self.command} {self.path} {status}"
        if kind in ("malformed", "auth", "rejected", "injected"):
            line += f" {kind}"
        if reason:
            line += " " + reason.replace("\n", " ")[:300]
        srv.write_log(line)
        self._reply(status, headers, out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, opts, app):
        super().__init__(("127.0.0.1", opts.port), Handler)
        self.opts = opts
        self.app = app
        self.stats = Stats()
        self.fail_lock = threading.Lock()
        self.fail_left = opts.fail_first
        self.log_lock = threading.Lock()
        self.log_file = open(opts.log, "a", buffering=1) if opts.log else None

    def write_log(self, line):
        if self.log_file is None:
            return
        with self.log_lock:
            self.log_file.write(line + "\n")


def add_common_args(p):
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--challtestsrv", default=os.environ.get("CERTFLEET_CHALLTESTSRV_URL"))
    p.add_argument("--log")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--fail-status", type=int, default=500)
    p.add_argument("--retry-after", type=int)
    p.add_argument("--latency", type=float, default=0)
    p.add_argument("--pid-file")
    p.add_argument("--zone", action="append", default=[],
                   help="a zone the fake serves: NAME or NAME=ID (repeatable)")


def read_secret(path, what):
    """The first line of path: secrets never come from argv."""
    if not path:
        sys.exit(f"fake: {what} is required (a file holding it)")
    with open(path) as f:
        return f.readline().rstrip("\r\n")


def serve(opts, app):
    srv = Server(opts, app)
    app.log = srv.write_log
    if opts.pid_file:
        with open(opts.pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    print(f"ready {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


def parser(description):
    return argparse.ArgumentParser(description=description)
