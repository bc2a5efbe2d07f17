#!/usr/bin/env python3
"""route53.py - a fake of the Amazon Route 53 REST API (2013-04-01), as much as certfleet's
route53 provider uses: ListHostedZonesByName, ListResourceRecordSets, ChangeResourceRecordSets
and GetChange. Every request's AWS Signature Version 4 is recomputed here from the raw request
and the configured secret; the ChangeBatch XML is checked against the documented structure and
limits (1,000 ResourceRecord elements, 32,000 Value characters, UPSERT counted twice); changes
stay PENDING for --insync-after seconds and are published to challtestsrv when they turn INSYNC.
See fakedns.py for the common options and test hooks.

  route53.py --access-key-id AKID --secret-file FILE [--session-token-file FILE]
             --zone example.com[=Z0123...] [--insync-after 1] [--fail-code Throttling] ...
"""

import datetime
import hashlib
import hmac
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakedns  # noqa: E402
from fakedns import Reject, malformed  # noqa: E402

NS = "https://route53.amazonaws.com/doc/2013-04-01/"
API = "/2013-04-01"
SERVICE = "route53"
REGION = "us-east-1"
MAX_RECORDS = 1000
MAX_CHARS = 32000
AUTH_RE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/, ]+)/(\d{8})/([^/, ]+)/([^/, ]+)/"
                     r"aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})")


def q(tag):
    return "{%s}%s" % (NS, tag)


def esc(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def order_key(name):
    """Route 53's listing order: labels reversed, then a trailing dot, compared as ASCII."""
    labels = name.lower().rstrip(".").split(".")
    return ".".join(reversed(labels)) + "."


def uri_encode(s, keep_slash=False):
    safe = "-_.~" + ("/" if keep_slash else "")
    return urllib.parse.quote(s, safe=safe)


def canonical_uri(raw_path):
    segs, trailing = [], False
    parts = raw_path[1:].split("/")
    for i, seg in enumerate(parts):
        trailing = seg in ("", ".", "..")
        if seg == "..":
            if segs:
                segs.pop()
        elif seg not in ("", "."):
            segs.append(seg)
    out = "".join("/" + uri_encode(s) for s in segs)
    if not segs or trailing:
        out += "/"
    return out


def canonical_query(raw_query):
    if not raw_query:
        return ""
    pairs = []
    for part in raw_query.split("&"):
        if part == "":
            continue
        k, eq, v = part.partition("=")
        k = urllib.parse.unquote_to_bytes(k)
        v = urllib.parse.unquote_to_bytes(v)
        pairs.append((urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~")))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def hmac256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class Route53(fakedns.App):
    def __init__(self, opts, akid, secret, token):
        self.akid, self.secret, self.token = akid, secret, token
        self.insync_after = opts.insync_after
        self.fail_code = opts.fail_code
        self.lock = threading.Lock()
        self.zones = {}      # name -> {"id", "sets": {(name, type): {"ttl", "values"}}}
        self.changes = {}    # id -> {"submitted", "insync_at", "names", "zone", "published"}
        for z in opts.zone:
            name, _, zid = z.partition("=")
            name = name.lower().rstrip(".")
            zid = zid or "Z" + hashlib.sha256(name.encode()).hexdigest()[:13].upper()
            sets = {
                (name, "NS"): {"ttl": 172800, "values": ["ns-1.awsdns-00.com.",
                                                         "ns-2.awsdns-00.net."]},
                (name, "SOA"): {"ttl": 900, "values": ["ns-1.awsdns-00.com. awsdns-hostmaster."
                                                       "amazon.com. 1 7200 900 1209600 86400"]},
            }
            self.zones[name] = {"id": zid, "sets": sets}
        self.publisher = fakedns.Publisher(opts.challtestsrv, lambda m: self.log(m))
        threading.Thread(target=self.propagate, daemon=True).start()

    # -- answers --

    def error_body(self, rej):
        code = rej.code or {400: "InvalidInput", 403: "AccessDenied", 404: "NoSuchResource",
                            429: "Throttling"}.get(rej.status, "InternalFailure")
        msg = rej.message
        if rej.kind == "injected":
            code, msg = (self.fail_code, "injected") if self.fail_code else (code, "injected")
        rid = secrets.token_hex(8)
        if code == "InvalidChangeBatch":
            body = (f'<?xml version="1.0"?>\n<InvalidChangeBatch xmlns="{NS}"><Messages>'
                    f"<Message>{esc(msg)}</Message></Messages><RequestId>{rid}</RequestId>"
                    f"</InvalidChangeBatch>")
        else:
            kind = "Sender" if rej.status < 500 else "Receiver"
            body = (f'<?xml version="1.0"?>\n<ErrorResponse xmlns="{NS}"><Error><Type>{kind}'
                    f"</Type><Code>{esc(code)}</Code><Message>{esc(msg)}</Message></Error>"
                    f"<RequestId>{rid}</RequestId></ErrorResponse>")
        return "text/xml", body.encode()

    def injected(self, status, retry_after):
        if self.fail_code:
            status = 400
        return super().injected(status, retry_after)

    @staticmethod
    def ok(xml, kind="ok"):
        body = '<?xml version="1.0" encoding="UTF-8"?>\n' + xml
        return 200, {"Content-Type": "text/xml"}, body.encode(), kind

    # -- test hooks --

    def dump(self):
        out = {}
        with self.lock:
            for z in self.zones.values():
                for (name, typ), s in sorted(z["sets"].items()):
                    if typ == "TXT":
                        out[name] = [self.dns_value(v) for v in s["values"]]
        return out

    def add_seeded(self, zone, name, content):
        s = self.zones[zone]["sets"].setdefault((name, "TXT"), {"ttl": 300, "values": []})
        s["values"].append(content)
        return [self.dns_value(v) for v in s["values"]]

    # -- helpers --

    @staticmethod
    def dns_value(v):
        try:
            return b"".join(fakedns.parse_quoted_strings(v, True, "Value")).decode()
        except Reject:
            return v

    def zone_by_id(self, zid):
        for name, z in self.zones.items():
            if z["id"] == zid:
                return name
        raise Reject(404, "rejected", "NoSuchHostedZone", f"No hosted zone found with ID: {zid}")

    def propagate(self):
        """Turns PENDING changes INSYNC when their time comes, publishing their names."""
        while True:
            time.sleep(0.05)
            due = []
            with self.lock:
                for cid, c in self.changes.items():
                    if not c["published"] and time.time() >= c["insync_at"]:
                        sets = self.zones[c["zone"]]["sets"]
                        due.append([(n, [self.dns_value(v) for v in
                                         sets.get((n, "TXT"), {"values": []})["values"]])
                                    for n in c["names"]])
                        c["published"] = True
            for names in due:
                for n, values in names:
                    self.publisher.publish(n, values)

    def verify(self, method, raw_path, raw_query, headers, body):
        """Checks the request's SigV4 signature by computing it again."""
        auths = headers.get_all("Authorization") or []
        if len(auths) != 1:
            raise Reject(403, "malformed", "MissingAuthenticationToken",
                         "Missing Authentication Token (exactly one Authorization header needed)")
        m = AUTH_RE.fullmatch(auths[0])
        if not m:
            raise Reject(400, "malformed", "IncompleteSignature",
                         "Authorization is not AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/"
                         "SERVICE/aws4_request, SignedHeaders=..., Signature=<64 hex>")
        akid, day, region, service, signed, sig = m.groups()
        if akid != self.akid:
            raise Reject(403, "auth", "InvalidClientTokenId",
                         "The security token included in the request is invalid.")
        if region != REGION or service != SERVICE:
            raise Reject(403, "malformed", "SignatureDoesNotMatch",
                         f"Credential should be scoped to region {REGION} and service {SERVICE}")
        dates = headers.get_all("X-Amz-Date") or []
        if len(dates) != 1 or not re.fullmatch(r"\d{8}T\d{6}Z", dates[0]):
            raise Reject(400, "malformed", "IncompleteSignature",
                         "exactly one X-Amz-Date: YYYYMMDDTHHMMSSZ header is required")
        amz = dates[0]
        if amz[:8] != day:
            raise Reject(403, "malformed", "SignatureDoesNotMatch",
                         "the credential scope date differs from X-Amz-Date")
        t = datetime.datetime.strptime(amz, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        if abs(time.time() - t.timestamp()) > 300:
            raise Reject(403, "malformed", "RequestExpired", "Signature expired: X-Amz-Date is "
                         "more than 5 minutes away from the server's time")
        names = signed.split(";")
        if names != sorted(names) or len(set(names)) != len(names):
            raise Reject(403, "malformed", "SignatureDoesNotMatch",
                         "SignedHeaders must be sorted and without repeats")
        need = {"host", "x-amz-date"} | ({"x-amz-security-token"} if self.token else set())
        if not need <= set(names):
            raise Reject(403, "malformed", "SignatureDoesNotMatch",
                         f"SignedHeaders must include {sorted(need)}")
        if self.token:
            got = headers.get_all("X-Amz-Security-Token") or []
            if len(got) != 1 or not hmac.compare_digest(got[0].encode(), self.token.encode()):
                raise Reject(403, "auth", "InvalidClientTokenId",
                             "The security token included in the request is invalid.")
        lines = []
        for n in names:
            vals = headers.get_all(n)
            if not vals:
                raise Reject(403, "malformed", "SignatureDoesNotMatch",
                             f"signed header {n} is not in the request")
            lines.append(n + ":" + ",".join(" ".join(v.split()) for v in vals))
        creq = "\n".join([method, canonical_uri(raw_path), canonical_query(raw_query),
                          "\n".join(lines) + "\n", signed, hashlib.sha256(body).hexdigest()])
        scope = f"{day}/{region}/{service}/aws4_request"
        sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope,
                         hashlib.sha256(creq.encode()).hexdigest()])
        k = hmac256(("AWS4" + self.secret).encode(), day)
        k = hmac256(hmac256(hmac256(k, region), service), "aws4_request")
        want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig):
            raise Reject(403, "auth", "SignatureDoesNotMatch",
                         "The request signature we calculated does not match the signature you "
                         "provided. Check your AWS Secret Access Key and signing method.")

    @staticmethod
    def params(query, allowed, what):
        out = {}
        for part in query.split("&") if query else []:
            k, eq, v = part.partition("=")
            k, v = urllib.parse.unquote(k), urllib.parse.unquote(v)
            if k not in allowed:
                raise malformed(f"{what}: unknown query parameter {k!r}")
            if k in out:
                raise malformed(f"{what}: query parameter {k!r} given twice")
            out[k] = v
        return out

    # -- the API --

    def api(self, method, path, query, headers, body):
        self.verify(method, path, query, headers, body)
        host = headers.get_all("Host") or []
        if len(host) != 1:
            raise malformed("exactly one Host header is required")
        if method == "POST":
            ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype not in ("application/xml", "text/xml"):
                raise malformed(f"POST {path}: Content-Type must be an XML type, not {ctype!r}")
        elif body:
            raise malformed(f"{method} {path}: a {method} request must not carry a body")
        parts = path.split("/")[1:]
        if parts[:1] != [API[1:]]:
            raise Reject(404, "malformed", "UnknownOperation", f"unknown path {path[:80]}")
        parts = parts[1:]
        if parts == ["hostedzonesbyname"] and method == "GET":
            return self.list_zones(query)
        if len(parts) == 3 and parts[0] == "hostedzone" and parts[2] == "rrset" and method == "GET":
            return self.list_sets(parts[1], query)
        if len(parts) == 4 and parts[0] == "hostedzone" and parts[2:] == ["rrset", ""] and \
                method == "POST":
            if query:
                raise malformed("ChangeResourceRecordSets takes no query parameters")
            return self.change(parts[1], body)
        if len(parts) == 2 and parts[0] == "change" and method == "GET":
            if query:
                raise malformed("GetChange takes no query parameters")
            return self.get_change(parts[1])
        raise Reject(404, "malformed", "UnknownOperation",
                     f"{method} {path[:80]} is not an operation this fake (or certfleet) uses "
                     "(note: ChangeResourceRecordSets is POST .../rrset/ with the slash)")

    def list_zones(self, query):
        p = self.params(query, {"dnsname", "hostedzoneid", "maxitems"}, "ListHostedZonesByName")
        if "hostedzoneid" in p and "dnsname" not in p:
            raise malformed("ListHostedZonesByName: hostedzoneid needs dnsname")
        try:
            maxitems = int(p.get("maxitems", "100"))
        except ValueError:
            raise malformed("ListHostedZonesByName: maxitems must be a number")
        if not 1 <= maxitems <= 100:
            raise malformed("ListHostedZonesByName: maxitems must be 1 to 100")
        start = order_key(p["dnsname"]) if "dnsname" in p else ""
        with self.lock:
            names = sorted((n for n in self.zones if order_key(n) >= start), key=order_key)
            items = "".join(
                f"<HostedZone><Id>/hostedzone/{self.zones[n]['id']}</Id><Name>{n}.</Name>"
                f"<CallerReference>fake-{n}</CallerReference><Config><PrivateZone>false"
                f"</PrivateZone></Config><ResourceRecordSetCount>{len(self.zones[n]['sets'])}"
                f"</ResourceRecordSetCount></HostedZone>" for n in names[:maxitems])
        trunc = "true" if len(names) > maxitems else "false"
        return self.ok(f'<ListHostedZonesByNameResponse xmlns="{NS}"><HostedZones>{items}'
                       f"</HostedZones><DNSName>{esc(p.get('dnsname', ''))}</DNSName>"
                       f"<IsTruncated>{trunc}</IsTruncated><MaxItems>{maxitems}</MaxItems>"
                       f"</ListHostedZonesByNameResponse>")

    def list_sets(self, zid, query):
        zone = self.zone_by_id(zid)
        p = self.params(query, {"name", "type", "identifier", "maxitems"}, "ListResourceRecordSets")
        if "type" in p and "name" not in p:
            raise Reject(400, "malformed", "InvalidInput", "type requires name")
        if "name" in p:
            n = p["name"].lower().rstrip(".")
            if n != zone and not n.endswith("." + zone):
                raise Reject(400, "malformed", "InvalidInput", f"{p['name']} is not in zone {zone}")
        try:
            maxitems = min(int(p.get("maxitems", "300")), 300)
        except ValueError:
            raise malformed("ListResourceRecordSets: maxitems must be a number")
        if maxitems < 1:
            raise malformed("ListResourceRecordSets: maxitems must be at least 1")
        start = (order_key(p["name"]) if "name" in p else "", p.get("type", ""))
        with self.lock:
            keys = sorted(self.zones[zone]["sets"], key=lambda k: (order_key(k[0]), k[1]))
            keys = [k for k in keys if (order_key(k[0]), k[1]) >= start]
            out = []
            for name, typ in keys[:maxitems]:
                s = self.zones[zone]["sets"][(name, typ)]
                rrs = "".join(f"<ResourceRecord><Value>{esc(v)}</Value></ResourceRecord>"
                              for v in s["values"])
                out.append(f"<ResourceRecordSet><Name>{name}.</Name><Type>{typ}</Type>"
                           f"<TTL>{s['ttl']}</TTL><ResourceRecords>{rrs}</ResourceRecords>"
                           f"</ResourceRecordSet>")
        more = ""
        if len(keys) > maxitems:
            nn, nt = keys[maxitems]
            more = f"<NextRecordName>{nn}.</NextRecordName><NextRecordType>{nt}</NextRecordType>"
        trunc = "true" if more else "false"
        return self.ok(f'<ListResourceRecordSetsResponse xmlns="{NS}"><ResourceRecordSets>'
                       f"{''.join(out)}</ResourceRecordSets><IsTruncated>{trunc}</IsTruncated>"
                       f"{more}<MaxItems>{maxitems}</MaxItems></ListResourceRecordSetsResponse>")

    @staticmethod
    def only(el, allowed, what):
        for c in el:
            if c.tag not in [q(a) for a in allowed]:
                raise malformed(f"{what}: unexpected element {c.tag.replace('{' + NS + '}', '')}")

    @staticmethod
    def one(el, tag, what):
        found = el.findall(q(tag))
        if len(found) != 1:
            raise malformed(f"{what}: needs exactly one <{tag}> (found {len(found)})")
        return found[0]

    def parse_batch(self, zone, body):
        try:
            root = ET.fromstring(body)
        except ET.ParseError as e:
            raise Reject(400, "malformed", "MalformedXML", f"the body is not XML: {e}")
        if root.tag != q("ChangeResourceRecordSetsRequest"):
            raise Reject(400, "malformed", "MalformedXML",
                         f"the root must be ChangeResourceRecordSetsRequest in namespace {NS}")
        self.only(root, ["ChangeBatch"], "ChangeResourceRecordSetsRequest")
        batch = self.one(root, "ChangeBatch", "ChangeResourceRecordSetsRequest")
        self.only(batch, ["Changes", "Comment"], "ChangeBatch")
        changes = self.one(batch, "Changes", "ChangeBatch")
        self.only(changes, ["Change"], "Changes")
        out, records, chars = [], 0, 0
        if len(changes) == 0:
            raise malformed("Changes: at least one Change is needed")
        for i, ch in enumerate(changes):
            what = f"Change {i + 1}"
            self.only(ch, ["Action", "ResourceRecordSet"], what)
            action = self.one(ch, "Action", what).text
            if action not in ("CREATE", "DELETE", "UPSERT"):
                raise malformed(f"{what}: Action must be CREATE, DELETE or UPSERT")
            rrset = self.one(ch, "ResourceRecordSet", what)
            self.only(rrset, ["Name", "Type", "TTL", "ResourceRecords"], what +
                      " (this fake supports simple record sets only)")
            name = (self.one(rrset, "Name", what).text or "").strip()
            if not name.endswith("."):
                raise malformed(f"{what}: Name {name!r} should be fully qualified (trailing dot)")
            fakedns.check_fqdn(name[:-1], zone, f"{what} Name")
            typ = self.one(rrset, "Type", what).text
            if typ != "TXT":
                raise malformed(f"{what}: Type must be TXT")
            try:
                ttl = int(self.one(rrset, "TTL", what).text or "")
            except ValueError:
                raise malformed(f"{what}: TTL must be a number")
            if not 0 <= ttl <= 2147483647:
                raise malformed(f"{what}: TTL out of range")
            rrs = self.one(rrset, "ResourceRecords", what)
            self.only(rrs, ["ResourceRecord"], what + " ResourceRecords")
            if len(rrs) == 0:
                raise malformed(f"{what}: ResourceRecords is empty")
            values = []
            for rr in rrs:
                self.only(rr, ["Value"], what + " ResourceRecord")
                v = self.one(rr, "Value", what + " ResourceRecord").text or ""
                fakedns.parse_quoted_strings(v, True, f"{what} Value")
                if len(v) > 4000:
                    raise malformed(f"{what}: a Value longer than 4,000 characters")
                values.append(v)
            weight = 2 if action == "UPSERT" else 1
            records += weight * len(values)
            chars += weight * sum(len(v) for v in values)
            out.append((action, name[:-1], ttl, values))
        if records > MAX_RECORDS:
            raise Reject(400, "malformed", "InvalidChangeBatch",
                         f"Number of records in the request ({records}, UPSERT counted twice) "
                         f"exceeds the limit of {MAX_RECORDS}")
        if chars > MAX_CHARS:
            raise Reject(400, "malformed", "InvalidChangeBatch",
                         f"Number of characters in Value elements ({chars}, UPSERT counted "
                         f"twice) exceeds the limit of {MAX_CHARS}")
        return out

    def change(self, zid, body):
        zone = self.zone_by_id(zid)
        changes = self.parse_batch(zone, body)
        with self.lock:
            sets = dict(self.zones[zone]["sets"])
            deleted = set()
            for action, name, ttl, values in changes:
                key = (name, "TXT")
                label = f"[name='{name}.', type='TXT']"
                if len(set(values)) != len(values):
                    raise Reject(400, "rejected", "InvalidChangeBatch",
                                 f"Duplicate Resource Record: {values[0][:60]}")
                if action == "DELETE":
                    if key in deleted:
                        raise Reject(400, "rejected", "InvalidChangeBatch",
                                     f"Tried to delete resource record set {label} twice")
                    cur = sets.get(key)
                    if cur is None:
                        raise Reject(400, "rejected", "InvalidChangeBatch",
                                     f"Tried to delete resource record set {label} but it was "
                                     "not found")
                    if cur["ttl"] != ttl or sorted(cur["values"]) != sorted(values):
                        raise Reject(400, "rejected", "InvalidChangeBatch",
                                     f"Tried to delete resource record set {label} but the values "
                                     "provided do not match the current values")
                    del sets[key]
                    deleted.add(key)
                elif action == "CREATE":
                    if key in sets:
                        raise Reject(400, "rejected", "InvalidChangeBatch",
                                     f"Tried to create resource record set {label} but it already "
                                     "exists")
                    sets[key] = {"ttl": ttl, "values": list(values)}
                else:
                    sets[key] = {"ttl": ttl, "values": list(values)}
            self.zones[zone]["sets"] = sets
            cid = "C" + secrets.token_hex(10).upper()
            submitted = datetime.datetime.now(datetime.timezone.utc)
            names = sorted({c[1] for c in changes})
            self.changes[cid] = {"zone": zone, "names": names, "submitted": submitted,
                                 "published": self.insync_after <= 0,
                                 "insync_at": time.time() + self.insync_after}
            now_values = [(n, [self.dns_value(v) for v in
                               sets.get((n, "TXT"), {"values": []})["values"]]) for n in names]
        if self.insync_after <= 0:  # INSYNC at once: in DNS before the answer says so
            for n, values in now_values:
                self.publisher.publish(n, values)
        with self.lock:
            return self.ok(f'<ChangeResourceRecordSetsResponse xmlns="{NS}">'
                           f"{self.change_info(cid)}</ChangeResourceRecordSetsResponse>", "write")

    def change_info(self, cid):
        c = self.changes[cid]
        status = "INSYNC" if c["published"] or time.time() >= c["insync_at"] else "PENDING"
        at = c["submitted"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return (f"<ChangeInfo><Id>/change/{cid}</Id><Status>{status}</Status>"
                f"<SubmittedAt>{at}</SubmittedAt></ChangeInfo>")

    def get_change(self, cid):
        with self.lock:
            if cid not in self.changes:
                raise Reject(404, "rejected", "NoSuchChange", f"A change with the specified "
                             f"change ID does not exist: {cid[:40]}")
            info = self.change_info(cid)
            if "INSYNC" in info and not self.changes[cid]["published"]:
                info = info.replace("INSYNC", "PENDING")  # published by propagate() first
        return self.ok(f'<GetChangeResponse xmlns="{NS}">{info}</GetChangeResponse>')


def main():
    p = fakedns.parser("fake Amazon Route 53 API for certfleet's tests")
    fakedns.add_common_args(p)
    p.add_argument("--access-key-id", required=True)
    p.add_argument("--secret-file", required=True, help="file whose first line is the secret key")
    p.add_argument("--session-token-file", help="file whose first line is a session token")
    p.add_argument("--insync-after", type=float, default=0,
                   help="seconds a change stays PENDING before INSYNC")
    p.add_argument("--fail-code", help="with --fail-first: answer 400 with this error code "
                   "(Throttling, PriorRequestNotComplete) instead of --fail-status")
    opts = p.parse_args()
    if not opts.zone:
        p.error("at least one --zone is needed")
    token = fakedns.read_secret(opts.session_token_file, "session token") \
        if opts.session_token_file else None
    app = Route53(opts, opts.access_key_id, fakedns.read_secret(opts.secret_file, "--secret-file"),
                  token)
    fakedns.serve(opts, app)


if __name__ == "__main__":
    main()
