#!/usr/bin/env python3
"""cloudflare.py - a fake of the Cloudflare API v4, as much as certfleet's cloudflare provider
uses: GET /zones?name=, GET /zones/{id}/dns_records (TXT, paged) and POST
/zones/{id}/dns_records/batch. Every request is checked against Cloudflare's documented format
(Bearer token, JSON Content-Type, the batch body's schema, TXT content as quoted character-
strings of at most 255 octets); see fakedns.py for the common options and test hooks.

  cloudflare.py --token-file FILE --zone example.com[=<32 hex id>] [--plan-batch-max 200] ...
"""

import datetime
import hashlib
import json
import os
import secrets
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakedns  # noqa: E402
from fakedns import Reject, malformed  # noqa: E402

PREFIX = "/client/v4"
ZONE_PARAMS = {"name", "page", "per_page", "status", "match", "order", "direction"}
LIST_PARAMS = {"type", "name", "name.exact", "content", "page", "per_page", "match", "order",
               "direction"}
POST_KEYS = {"type", "name", "content", "ttl", "comment", "tags", "proxied"}
TYPES = {"A", "AAAA", "CAA", "CERT", "CNAME", "DNSKEY", "DS", "HTTPS", "LOC", "MX", "NAPTR", "NS",
         "OPENPGPKEY", "PTR", "SMIMEA", "SRV", "SSHFP", "SVCB", "TLSA", "TXT", "URI"}


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def txt_value(content):
    """The value DNS serves for a record's content: quoted strings joined, or legacy text."""
    if content.startswith('"'):
        try:
            return b"".join(fakedns.parse_quoted_strings(content, False, "content")).decode()
        except Reject:
            return content
    return content


class Cloudflare(fakedns.App):
    def __init__(self, opts, token):
        self.token = token
        self.batch_max = opts.plan_batch_max
        self.lock = threading.Lock()
        self.zones = {}      # name -> id
        self.records = {}    # id -> record dict
        for z in opts.zone:
            name, _, zid = z.partition("=")
            self.zones[name.lower()] = zid or hashlib.md5(name.lower().encode()).hexdigest()
        self.publisher = fakedns.Publisher(opts.challtestsrv, lambda m: self.log(m))

    # -- answers --

    def error_body(self, rej):
        code = rej.code
        if code is None:
            code = {400: 1004, 403: 10000, 404: 7003, 429: 971}.get(rej.status, 1000)
        msg = rej.message if rej.kind != "injected" else {
            429: "Please wait and consider throttling your request speed",
        }.get(rej.status, "Internal server error")
        body = {"success": False, "errors": [{"code": code, "message": msg}], "messages": [],
                "result": None}
        return "application/json", json.dumps(body).encode()

    def ok(self, result, kind="ok", info=None):
        body = {"success": True, "errors": [], "messages": [], "result": result}
        if info is not None:
            body["result_info"] = info
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode(), kind

    # -- test hooks --

    def dump(self):
        with self.lock:
            out = {}
            for r in sorted(self.records.values(), key=lambda r: r["created_on"]):
                if r["type"] == "TXT":
                    out.setdefault(r["name"], []).append(txt_value(r["content"]))
            return out

    def add_seeded(self, zone, name, content):
        rec = self.new_record(zone, name, content, 300, None)
        self.records[rec["id"]] = rec
        return self.values_at(name)

    # -- helpers --

    def new_record(self, zone, name, content, ttl, comment):
        t = now()
        return {"id": secrets.token_hex(16), "zone_id": self.zones[zone], "zone_name": zone,
                "name": name, "type": "TXT", "content": content, "proxiable": False,
                "proxied": False, "ttl": ttl, "settings": {}, "meta": {}, "comment": comment,
                "tags": [], "created_on": t, "modified_on": t}

    def values_at(self, name):
        recs = sorted((r for r in self.records.values() if r["name"] == name and r["type"] == "TXT"),
                      key=lambda r: r["created_on"])
        return [txt_value(r["content"]) for r in recs]

    def check_auth(self, headers):
        auth = headers.get_all("Authorization") or []
        if len(auth) != 1:
            raise malformed("exactly one Authorization: Bearer <token> header is required",
                            code=9106)
        if not auth[0].startswith("Bearer ") or len(auth[0]) <= 7 or " " in auth[0][7:]:
            raise malformed("the Authorization header must be \"Bearer <token>\"", code=6111)
        if not secrets.compare_digest(auth[0][7:].encode(), self.token.encode()):
            raise Reject(403, "auth", 10000, "Authentication error")

    def zone_by_id(self, zid):
        for name, i in self.zones.items():
            if i == zid:
                return name
        raise Reject(400, "rejected", 7003,
                     "Could not route to /zones/" + zid[:40] + ", perhaps your object identifier "
                     "is invalid?")

    @staticmethod
    def params(query, allowed, what):
        try:
            q = urllib.parse.parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError:
            raise malformed(f"{what}: the query string is not name=value pairs")
        for k, v in q.items():
            if k not in allowed:
                raise malformed(f"{what}: unknown query parameter {k!r}")
            if len(v) != 1:
                raise malformed(f"{what}: query parameter {k!r} given {len(v)} times")
        return {k: v[0] for k, v in q.items()}

    @staticmethod
    def paging(q, what, default=100, maximum=5000000):
        try:
            page = int(q.get("page", "1"))
            per_page = int(q.get("per_page", str(default)))
        except ValueError:
            raise malformed(f"{what}: page and per_page must be integers")
        if page < 1 or not 1 <= per_page <= maximum:
            raise malformed(f"{what}: page must be at least 1 and per_page 1 to {maximum}")
        return page, per_page

    # -- the API --

    def api(self, method, path, query, headers, body):
        if not path.startswith(PREFIX + "/"):
            raise Reject(404, "malformed", 7000, f"No route for that URI: {path[:80]}")
        self.check_auth(headers)
        parts = path[len(PREFIX) + 1:].split("/")
        if method in ("POST", "PUT", "PATCH"):
            ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/json":
                raise malformed(f"{method} {path}: Content-Type must be application/json, "
                                f"not {ctype!r}")
        elif body:
            raise malformed(f"{method} {path}: a {method} request must not carry a body")
        if parts == ["zones"] and method == "GET":
            return self.list_zones(query)
        if len(parts) == 3 and parts[0] == "zones" and parts[2] == "dns_records" and method == "GET":
            return self.list_records(parts[1], query)
        if (len(parts) == 4 and parts[0] == "zones" and parts[2:] == ["dns_records", "batch"] and
                method == "POST"):
            if query:
                raise malformed("POST .../dns_records/batch takes no query parameters")
            return self.batch(parts[1], body)
        raise Reject(405 if parts[0] == "zones" else 404, "malformed", 7001,
                     f"{method} {path[:80]} is not an endpoint this fake (or certfleet) uses")

    def list_zones(self, query):
        q = self.params(query, ZONE_PARAMS, "GET /zones")
        page, per_page = self.paging(q, "GET /zones", 20, 50)
        with self.lock:
            names = sorted(z for z in self.zones if "name" not in q or z == q["name"].lower())
            result = [{"id": self.zones[z], "name": z, "status": "active", "paused": False,
                       "type": "full"} for z in names]
        start = (page - 1) * per_page
        info = {"page": page, "per_page": per_page, "count": len(result[start:start + per_page]),
                "total_count": len(result),
                "total_pages": max(1, (len(result) + per_page - 1) // per_page)}
        return self.ok(result[start:start + per_page], info=info)

    def list_records(self, zid, query):
        zone = self.zone_by_id(zid)
        q = self.params(query, LIST_PARAMS, "GET /zones/{id}/dns_records")
        page, per_page = self.paging(q, "GET /zones/{id}/dns_records")
        if "type" in q and q["type"] not in TYPES:
            raise malformed(f"GET dns_records: unknown record type {q['type']!r}")
        if q.get("match", "all") not in ("all", "any"):
            raise malformed("GET dns_records: match must be all or any")
        name = q.get("name.exact", q.get("name"))
        with self.lock:
            recs = sorted((r for r in self.records.values() if r["zone_name"] == zone and
                           ("type" not in q or r["type"] == q["type"]) and
                           (name is None or r["name"] == name.lower().rstrip(".")) and
                           ("content" not in q or r["content"] == q["content"])),
                          key=lambda r: (r["name"], r["created_on"]))
        start = (page - 1) * per_page
        chunk = recs[start:start + per_page]
        info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(recs),
                "total_pages": max(1, (len(recs) + per_page - 1) // per_page)}
        return self.ok(chunk, info=info)

    def check_post(self, zone, i, p):
        what = f"posts[{i}]"
        if not isinstance(p, dict):
            raise malformed(f"{what} must be an object")
        extra = set(p) - POST_KEYS
        if extra:
            raise malformed(f"{what}: unknown field(s) {sorted(extra)}")
        if p.get("type") != "TXT":
            raise malformed(f"{what}: type must be \"TXT\" (the only type certfleet writes)")
        fakedns.check_fqdn(p.get("name"), zone, f"{what}.name")
        content = p.get("content")
        if not isinstance(content, str):
            raise malformed(f"{what}.content must be a string")
        # Documented: "The content must consist of quoted character strings (RFC 1035), each
        # with a length of up to 255 bytes."
        fakedns.parse_quoted_strings(content, False, f"{what}.content")
        ttl = p.get("ttl", 1)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not (ttl == 1 or 30 <= ttl <= 86400):
            raise malformed(f"{what}.ttl must be 1 (automatic) or 30 to 86400")
        if "comment" in p and (not isinstance(p["comment"], str) or len(p["comment"]) > 100):
            raise malformed(f"{what}.comment must be a string of at most 100 characters")
        if p.get("proxied", False) is not False:
            raise malformed(f"{what}: a TXT record cannot be proxied")
        if "tags" in p and p["tags"]:
            raise malformed(f"{what}: tags need a paid plan; certfleet does not send them")

    def batch(self, zid, body):
        zone = self.zone_by_id(zid)
        try:
            req = json.loads(body)
        except ValueError:
            raise malformed("POST dns_records/batch: the body is not JSON")
        if not isinstance(req, dict):
            raise malformed("POST dns_records/batch: the body must be a JSON object")
        extra = set(req) - {"deletes", "patches", "puts", "posts"}
        if extra:
            raise malformed(f"POST dns_records/batch: unknown field(s) {sorted(extra)}")
        for k in req:
            if not isinstance(req[k], list):
                raise malformed(f"POST dns_records/batch: {k} must be an array")
        if req.get("patches") or req.get("puts"):
            raise malformed("POST dns_records/batch: certfleet never patches or puts records")
        deletes, posts = req.get("deletes", []), req.get("posts", [])
        if not deletes and not posts:
            raise malformed("POST dns_records/batch: an empty batch")
        if len(deletes) + len(posts) > self.batch_max:
            raise Reject(400, "malformed", 81000,
                         f"Batch of {len(deletes) + len(posts)} operations exceeds the plan's "
                         f"limit of {self.batch_max}")
        for i, d in enumerate(deletes):
            if not isinstance(d, dict) or set(d) != {"id"} or not isinstance(d["id"], str) or \
                    len(d["id"]) != 32:
                raise malformed(f"deletes[{i}] must be {{\"id\": \"<32 hex digits>\"}}")
        for i, p in enumerate(posts):
            self.check_post(zone, i, p)
        with self.lock:
            ids = [d["id"] for d in deletes]
            if len(set(ids)) != len(ids):
                raise Reject(400, "rejected", 81044, "Record does not exist. (deleted twice)")
            for i in ids:
                if i not in self.records or self.records[i]["zone_name"] != zone:
                    raise Reject(400, "rejected", 81044, "Record does not exist.")
            after = {k: v for k, v in self.records.items() if k not in ids}
            created = []
            for p in posts:
                val = txt_value(p["content"])
                for r in list(after.values()) + created:
                    if r["name"] == p["name"] and r["type"] == "TXT" and txt_value(r["content"]) == val:
                        raise Reject(400, "rejected", 81058, "An identical record already exists.")
                created.append(self.new_record(zone, p["name"], p["content"], p.get("ttl", 1),
                                               p.get("comment")))
            deleted = [self.records[i] for i in ids]
            for r in created:
                after[r["id"]] = r
            self.records = after
            touched = sorted({r["name"] for r in deleted + created})
            published = [(n, self.values_at(n)) for n in touched]
        for n, values in published:
            self.publisher.publish(n, values)
        return self.ok({"deletes": deleted, "patches": [], "puts": [], "posts": created}, "write")


def main():
    p = fakedns.parser("fake Cloudflare API v4 for certfleet's tests")
    fakedns.add_common_args(p)
    p.add_argument("--token-file", required=True, help="file whose first line is the API token")
    p.add_argument("--plan-batch-max", type=int, default=200,
                   help="operations per batch request (Free 200, Pro and up 3,500)")
    opts = p.parse_args()
    if not opts.zone:
        p.error("at least one --zone is needed")
    app = Cloudflare(opts, fakedns.read_secret(opts.token_file, "--token-file"))
    fakedns.serve(opts, app)


if __name__ == "__main__":
    main()
