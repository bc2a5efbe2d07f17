#!/usr/bin/env python3
"""flaky_proxy.py - a test fixture: forwards POSTs to the pebble-challtestsrv management API, but
answers the first N of them with 503. Prints its port on stdout, logs to stderr. Stops on its own
after 10 minutes. Usage: flaky_proxy.py UPSTREAM_URL N"""
import http.server
import sys
import threading
import urllib.request

upstream = sys.argv[1].rstrip("/")
left = [int(sys.argv[2])]
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            refuse = left[0] > 0
            if refuse:
                left[0] -= 1
        if refuse:
            print(f"refused {self.path}", file=sys.stderr, flush=True)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        req = urllib.request.Request(upstream + self.path, data=body, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            status = r.status
        print(f"forwarded {self.path} -> {status}", file=sys.stderr, flush=True)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(srv.server_address[1], flush=True)
threading.Timer(600, srv.shutdown).start()
srv.serve_forever()
