#!/usr/bin/env python3
"""dnsburst.py - sends N DNS TXT queries over TCP at once, one connection each (as Pebble's VA asks its
resolver), and counts the outcomes: answers, EOF (closed without an answer), other errors.

  bench/dnsburst.py HOST PORT N [NAME]
"""
import asyncio, struct, sys, random, collections
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
name = sys.argv[4] if len(sys.argv) > 4 else "_validation-persist.a.example."
def query(qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for l in name.rstrip(".").split("."):
        q += bytes([len(l)]) + l.encode()
    q += b"\x00" + struct.pack(">HH", 16, 1)
    return struct.pack(">H", len(q)) + q
async def one(i, out):
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 15)
        w.write(query(i & 0xffff)); await w.drain()
        hdr = await asyncio.wait_for(r.readexactly(2), 15)
        body = await asyncio.wait_for(r.readexactly(struct.unpack(">H", hdr)[0]), 15)
        out["answer"] += 1
        w.close()
    except asyncio.IncompleteReadError:
        out["EOF"] += 1
    except Exception as e:
        out[type(e).__name__] += 1
async def main():
    out = collections.Counter()
    await asyncio.gather(*(one(i, out) for i in range(n)))
    print(dict(out))
asyncio.run(main())
