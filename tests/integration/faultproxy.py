#!/usr/bin/env python3
"""faultproxy.py - a test fixture: an HTTPS proxy in front of Pebble's ACME API that injects faults.

It terminates TLS with the test stack's localhost certificate (STACK/tls/server.pem and server.key,
which the stack CA signs, so certfleet trusts it through CERTFLEET_CA_BUNDLE) and forwards every
request to https://localhost:PEBBLE_PORT, verifying Pebble with the stack CA. The Host header is
forwarded unchanged: Pebble builds every URL it hands out (directory, Location, Link, authorization,
finalize and certificate URLs, account URLs) from the request's Host, and checks the JWS "url" and
"kid" against it too, so a client that starts from https://localhost:PROXY/dir keeps talking to the
proxy and its signatures still verify. Nothing is rewritten. (The account URL, and so the
dns-persist-01 accounturi, carries the proxy's port: register the account through the proxy, and
keep the proxy on one port for the whole test.)

Each request draws a fault with probability --rate; the kind is drawn uniformly among the kinds of
--faults that apply to the request. Kinds, and whether Pebble saw the request:

  500, 503         a problem document with that status; not forwarded
  429              a rateLimited problem with Retry-After: 1; not forwarded
  absurd-retry-after  503 with Retry-After 99999999999999999999 or -1 (alternately); not forwarded
  reset            the connection is reset (RST, no answer); not forwarded
  delay            --delay seconds of silence, then forwarded normally
  500-after        forwarded, then 500 instead of Pebble's answer: Pebble acted, the client thinks
                   not (a newOrder answered this way leaves an order the client never learns of)
  reset-after      forwarded, then the connection is reset
  truncate         forwarded; Pebble's status, headers and Content-Length, half the body, then reset
  garbage          forwarded; Pebble's status and headers, a body of broken JSON or binary noise
                   (applies to 2xx answers only: the draw is kept, the answer passed on otherwise)
  nolocation       forwarded; the Location header of the 201 newOrder answer is removed (drawn
                   only for newOrder requests)

--hang: every request whose path does not match --hang-except (default: the directory and
newNonce) is read and never answered; when hang mode is switched off, the held requests are reset.
Hang mode is switched on by SIGUSR1 and off by SIGUSR2, or through the control port.

Control port (--control-port, plain HTTP on 127.0.0.1, printed on the second line of stdout):
GET /hang/on, /hang/off, /rate/<float>, /stats;
/header/<text>/<Name>/<value>: answers to requests whose path contains <text> (an ARI CertID, say)
carry the header Name: value instead of Pebble's (Retry-After for one certificate's renewalInfo);
/directory/drop/<member>: the directory answer (/dir) leaves out that member (renewalInfo: a CA
without ARI); /directory/keep: passed on unchanged again.

Stdout: the proxy's port, then (with --control-port) the control port. Stderr: one line per fault,
and the totals on exit. --stats FILE gets the totals as JSON on exit (SIGTERM, SIGINT, or the end
of --max-seconds) and on SIGHUP. Listens on 127.0.0.1 only.
"""
import argparse
import http.client
import http.server
import json
import os
import random
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time

ALL_KINDS = ["500", "503", "429", "absurd-retry-after", "reset", "delay", "500-after", "reset-after",
             "truncate", "garbage", "nolocation"]
NOT_FORWARDED = {"500", "503", "429", "absurd-retry-after", "reset"}
NEW_ORDER_PATH = "/order-plz"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-connection", "content-length"}


def parse_args():
    ap = argparse.ArgumentParser(description="fault-injecting HTTPS proxy in front of Pebble")
    ap.add_argument("--port", type=int, default=0, help="listen port (0: any; printed on stdout)")
    ap.add_argument("--upstream-port", type=int, default=int(os.environ.get("CERTFLEET_PEBBLE_PORT", "14000")))
    ap.add_argument("--tls-dir", default=os.path.join(os.environ.get("CERTFLEET_STACK_DIR", ".stack"), "tls"))
    ap.add_argument("--rate", type=float, default=0.0, help="probability of a fault per request")
    ap.add_argument("--faults", default=",".join(k for k in ALL_KINDS), help="comma-separated kinds")
    ap.add_argument("--delay", type=float, default=3.0, help="seconds for the delay kind")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--only-path-regex", default=None, help="inject faults only where the path matches")
    ap.add_argument("--hang", action="store_true", help="start in hang mode")
    ap.add_argument("--hang-except", default=r"^/(dir|nonce-plz)$", help="paths served in hang mode")
    ap.add_argument("--control-port", type=int, default=None, help="plain-HTTP control port (0: any)")
    ap.add_argument("--stats", default=None, help="write the totals as JSON to this file")
    ap.add_argument("--max-seconds", type=float, default=900.0, help="exit after this long")
    a = ap.parse_args()
    kinds = [k for k in a.faults.split(",") if k]
    bad = [k for k in kinds if k not in ALL_KINDS]
    if bad:
        ap.error(f"unknown fault kind(s) {','.join(bad)}; known: {','.join(ALL_KINDS)}")
    if not 0.0 <= a.rate <= 1.0:
        ap.error("--rate must be within 0..1")
    a.kinds = kinds
    return a


args = parse_args()
rng = random.Random(args.seed)
lock = threading.Lock()
state = {"rate": args.rate, "hang": args.hang, "headers": [], "dir_drop": set()}
hang_released = threading.Condition(lock)  # notified when hang mode is switched off
only_re = re.compile(args.only_path_regex) if args.only_path_regex else None
hang_except_re = re.compile(args.hang_except)
stats = {"requests": 0, "requests_by_endpoint": {}, "faults": {}, "faults_by_endpoint": {},
         "hung": 0, "upstream_errors": 0}
started = time.monotonic()


def endpoint_of(path):
    """/my-order/abc -> /my-order: the endpoint, for counting."""
    p = path.split("?", 1)[0]
    parts = p.split("/")
    return "/" + parts[1] if len(parts) > 1 else p


def count(key, endpoint, kind=None):
    """Counts a request (kind None) or a fault; call with lock held."""
    if kind is None:
        stats["requests"] += 1
        stats["requests_by_endpoint"][endpoint] = stats["requests_by_endpoint"].get(endpoint, 0) + 1
        return
    stats[key][kind] = stats[key].get(kind, 0) + 1
    per = stats["faults_by_endpoint"].setdefault(endpoint, {})
    per[kind] = per.get(kind, 0) + 1


def totals_json():
    with lock:
        out = dict(stats)
        out["faults_total"] = sum(stats["faults"].values())
        out["rate"] = state["rate"]
        out["seconds"] = round(time.monotonic() - started, 3)
        return json.dumps(out, sort_keys=True)


def write_stats():
    text = totals_json()
    if args.stats:
        tmp = args.stats + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, args.stats)
    return text


def log(msg):
    print(f"faultproxy: {msg}", file=sys.stderr, flush=True)


def set_hang(on):
    with lock:
        state["hang"] = on
        if not on:
            hang_released.notify_all()
    log(f"hang mode {'on' if on else 'off'}")


def draw_fault(method, path):
    """The fault kind for this request, or None; counts the request."""
    ep = endpoint_of(path)
    with lock:
        count(None, ep)
        if only_re and not only_re.search(path):
            return None
        kinds = [k for k in args.kinds
                 if (k != "nolocation" or (method == "POST" and ep == NEW_ORDER_PATH))
                 and (k not in ("garbage", "truncate") or method != "HEAD")]
        if not kinds or rng.random() >= state["rate"]:
            return None
        return rng.choice(kinds)


def rewrite(path, rheaders, data):
    """The answer with the control port's header overrides and directory edits applied."""
    with lock:
        headers = [(t, n, v) for t, n, v in state["headers"] if t in path]
        drop = set(state["dir_drop"])
    for _, name, value in headers:
        rheaders = [(k, v) for k, v in rheaders if k.lower() != name.lower()] + [(name, value)]
    if drop and path.split("?", 1)[0] == "/dir":
        d = json.loads(data)
        for member in drop:
            d.pop(member, None)
        data = json.dumps(d).encode()
    return rheaders, data


def problem(status, ptype, detail):
    body = json.dumps({"type": "urn:ietf:params:acme:error:" + ptype, "detail": detail,
                       "status": status}).encode()
    return body


class Upstream:
    """One keep-alive connection to Pebble per client connection (handler thread)."""

    ctx = None

    def __init__(self):
        self.conn = None

    def request(self, method, path, headers, body):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection("localhost", args.upstream_port, context=Upstream.ctx,
                                                        timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                return r.status, r.reason, r.getheaders(), data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # Pebble closed an idle keep-alive connection: one more try on a new one
                self.close()
                if attempt == 2:
                    raise
            except Exception:
                self.close()
                raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"

    def setup(self):
        super().setup()
        self.upstream = Upstream()

    def finish(self):
        try:
            super().finish()
        finally:
            self.upstream.close()

    def do_GET(self):
        self.relay()

    def do_POST(self):
        self.relay()

    def do_HEAD(self):
        self.relay()

    def log_message(self, *a):
        pass

    # --- answers ---
    def reset(self):
        """Close the connection with an RST and no answer."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True

    def answer(self, status, headers, body, send_len=None):
        self.send_response_only(status)
        for k, v in headers:
            if k.lower() not in HOP_BY_HOP and k.lower() not in ("server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":  # an answer to HEAD has no body, whatever its length says
            self.wfile.write(body if send_len is None else body[:send_len])
        self.wfile.flush()

    def answer_problem(self, status, ptype, detail, extra=()):
        self.answer(status, [("Content-Type", "application/problem+json"), *extra],
                    problem(status, ptype, detail))

    # --- the request ---
    def relay(self):
        method, path = self.command, self.path
        ep = endpoint_of(path)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body is not None:
            headers["Content-Length"] = str(len(body))

        if self.hold_if_hanging(path, ep):
            return
        kind = draw_fault(method, path)
        if kind is not None:
            log(f"{kind} {method} {path}")

        if kind in NOT_FORWARDED:
            self.counted(ep, kind)
            if kind == "500":
                self.answer_problem(500, "serverInternal", "faultproxy: injected 500")
            elif kind == "503":
                self.answer_problem(503, "serverInternal", "faultproxy: injected 503")
            elif kind == "429":
                self.answer_problem(429, "rateLimited", "faultproxy: injected 429", [("Retry-After", "1")])
            elif kind == "absurd-retry-after":
                with lock:
                    absurd = "99999999999999999999" if stats["faults"][kind] % 2 else "-1"
                self.answer_problem(503, "serverInternal", "faultproxy: injected 503 with Retry-After " + absurd,
                                    [("Retry-After", absurd)])
            else:  # reset
                self.reset()
            return
        if kind == "delay":
            self.counted(ep, kind)
            time.sleep(args.delay)

        try:
            status, reason, rheaders, data = self.upstream.request(method, path, headers, body)
        except Exception as e:
            with lock:
                stats["upstream_errors"] += 1
            log(f"upstream error on {method} {path}: {e!r}")
            self.answer_problem(502, "serverInternal", f"faultproxy: upstream error: {e}")
            return

        if kind == "500-after":
            self.counted(ep, kind)
            self.answer_problem(500, "serverInternal", "faultproxy: injected 500 after forwarding")
        elif kind == "reset-after":
            self.counted(ep, kind)
            self.reset()
        elif kind == "truncate" and len(data) >= 2:
            self.counted(ep, kind)
            self.answer(status, rheaders, data, send_len=len(data) // 2)
            self.reset()
        elif kind == "garbage" and 200 <= status < 300:
            self.counted(ep, kind)
            with lock:
                noise = b'{"status": ' if stats["faults"][kind] % 2 else bytes(rng.getrandbits(8) for _ in range(64))
            self.answer(status, rheaders, noise)
        elif kind == "nolocation" and any(k.lower() == "location" for k, _ in rheaders):
            self.counted(ep, kind)
            self.answer(status, [(k, v) for k, v in rheaders if k.lower() != "location"], data)
        else:
            if kind is not None and kind != "delay":
                log(f"{kind} did not apply to {method} {path} ({status}); passed on")
            self.answer(status, *rewrite(path, rheaders, data))

    def counted(self, ep, kind):
        with lock:
            count("faults", ep, kind)

    def hold_if_hanging(self, path, ep):
        """In hang mode: hold the request until hang mode ends, then reset it. True when held."""
        with lock:
            if not state["hang"] or hang_except_re.search(path.split("?", 1)[0]):
                return False
            stats["hung"] += 1
            count(None, ep)
            while state["hang"]:
                hang_released.wait()
        log(f"hang released: reset {self.command} {path}")
        self.reset()
        return True


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    tls = None

    def finish_request(self, request, client_address):
        # The handshake happens here, in the connection's own thread, not in the accept loop.
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            conn.close()

    def handle_error(self, request, client_address):
        e = sys.exc_info()[1]
        if not isinstance(e, (ConnectionError, ssl.SSLError, TimeoutError, BrokenPipeError)):
            super().handle_error(request, client_address)


class Control(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        m = re.fullmatch(r"/rate/([0-9.]+)", self.path)
        h = re.fullmatch(r"/header/([^/]+)/([A-Za-z0-9-]+)/([^/]+)", self.path)
        d = re.fullmatch(r"/directory/drop/([A-Za-z0-9]+)", self.path)
        if h:
            with lock:
                state["headers"].append(h.groups())
            log(f"header {h.group(2)}: {h.group(3)} on paths with {h.group(1)}")
        elif d:
            with lock:
                state["dir_drop"].add(d.group(1))
            log(f"directory without {d.group(1)}")
        elif self.path == "/directory/keep":
            with lock:
                state["dir_drop"].clear()
            log("directory passed on unchanged")
        elif self.path == "/hang/on":
            set_hang(True)
        elif self.path == "/hang/off":
            set_hang(False)
        elif m and 0.0 <= float(m.group(1)) <= 1.0:
            with lock:
                state["rate"] = float(m.group(1))
            log(f"rate {state['rate']}")
        elif self.path != "/stats":
            self.send_error(404)
            return
        body = (totals_json() + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def stop(reason):
    text = write_stats()
    log(f"stopping ({reason}); totals: {text}")
    os._exit(0)


def main():
    tls_dir = args.tls_dir
    Upstream.ctx = ssl.create_default_context(cafile=os.path.join(tls_dir, "ca.pem"))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(os.path.join(tls_dir, "server.pem"), os.path.join(tls_dir, "server.key"))
    server_ctx.set_alpn_protocols(["http/1.1"])  # http.server speaks HTTP/1.1 only

    srv = Server(("127.0.0.1", args.port), Handler)
    srv.tls = server_ctx
    print(srv.server_address[1], flush=True)
    if args.control_port is not None:
        ctl = http.server.ThreadingHTTPServer(("127.0.0.1", args.control_port), Control)
        ctl.daemon_threads = True
        threading.Thread(target=ctl.serve_forever, daemon=True).start()
        print(ctl.server_address[1], flush=True)

    signal.signal(signal.SIGTERM, lambda *_: stop("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: stop("SIGINT"))
    signal.signal(signal.SIGHUP, lambda *_: write_stats())
    signal.signal(signal.SIGUSR1, lambda *_: threading.Thread(target=set_hang, args=(True,)).start())
    signal.signal(signal.SIGUSR2, lambda *_: threading.Thread(target=set_hang, args=(False,)).start())
    timer = threading.Timer(args.max_seconds, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()
    log(f"listening on 127.0.0.1:{srv.server_address[1]} -> https://localhost:{args.upstream_port}, "
        f"rate {args.rate}, faults {','.join(args.kinds)}, hang {args.hang}")
    srv.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
