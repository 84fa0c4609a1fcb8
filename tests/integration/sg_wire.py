#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A raw secguard protocol client for tests (the frame layout is in common/protocol.h).

    sg_wire.py SOCKET TYPE [FIELD=VALUE]...

TYPE is a request name (FLEET_LOCK) or number. FIELD is a tag name (KIND, KEY, UNTIL...)
or number; VALUE is text for string tags, a decimal for u64 tags, hex for bytes tags.
Prints every reply as one JSON line {"type": NAME, ...fields} (bytes as hex) until an OK
or ERROR, or the daemon closes. Exit status 0 when the last reply was OK, 1 for ERROR,
2 when the connection ended without either."""
import json
import socket
import struct
import sys

TYPES = {"PRECHECK": 1, "REPORT": 2, "EVENT": 3, "STATUS": 4, "LOCKS": 5, "UNLOCK": 6,
         "AUDIT_QUERY": 7, "AUDIT_VERIFY": 8, "ACCOUNT": 9, "FLEET_EXPORT": 17,
         "FLEET_LOCK": 18, "FLEET_UNLOCK": 19, "OK": 0x80, "ERROR": 0x81, "ROW": 0x82}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
# tag: (name, kind)  kind: s = string, u = u64, b = bytes
TAGS = {1: ("USER", "s"), 2: ("RHOST", "s"), 3: ("TTY", "s"), 4: ("SERVICE", "s"),
        5: ("USER_KNOWN", "u"), 6: ("RESULT", "u"), 7: ("REASON", "s"), 8: ("DECISION", "u"),
        9: ("DELAY_MS", "u"), 10: ("ERROR", "u"), 11: ("DETAIL", "s"), 12: ("EVENT", "s"),
        13: ("TIME", "u"), 14: ("UNTIL", "u"), 15: ("SINCE", "u"), 16: ("LIMIT", "u"),
        17: ("COUNT", "u"), 18: ("KIND", "s"), 19: ("KEY", "s"), 20: ("VERSION", "s"),
        21: ("UPTIME", "u"), 22: ("LOCKS", "u"), 23: ("SESSIONS", "u"), 24: ("AUDIT_ROWS", "u"),
        25: ("CONFIG", "s"), 26: ("ID", "u"), 27: ("PID", "u"), 28: ("UID", "u"),
        29: ("SEALED", "b"), 30: ("TOKEN", "s"), 31: ("PERMITS", "u"), 32: ("PERMITS_MAX", "u"),
        33: ("FAILURES", "u"), 34: ("SESSION_ID", "s"), 35: ("LOGIND_ID", "s"), 36: ("IDLE", "u"),
        37: ("STATE", "s"), 38: ("MAC", "b"), 39: ("EPOCH", "u"), 40: ("HOST", "s"), 41: ("FLEET", "u")}
TAG_NUMS = {name: (num, kind) for num, (name, kind) in TAGS.items()}


def encode(mtype, fields):
    payload = b""
    for tag, kind, value in fields:
        if kind == "u":
            v = struct.pack(">Q", int(value))
        elif kind == "b":
            v = bytes.fromhex(value)
        else:
            v = value.encode("utf-8", "surrogateescape")
        payload += struct.pack(">BH", tag, len(v)) + v
    return b"SG\x01" + bytes([mtype]) + struct.pack(">I", len(payload)) + payload


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def decode(mtype, payload):
    out = {"type": TYPE_NAMES.get(mtype, str(mtype))}
    i = 0
    while i < len(payload):
        tag, ln = struct.unpack(">BH", payload[i:i + 3])
        v = payload[i + 3:i + 3 + ln]
        i += 3 + ln
        name, kind = TAGS.get(tag, (str(tag), "b"))
        if kind == "u":
            out[name] = struct.unpack(">Q", v)[0]
        elif kind == "s":
            out[name] = v.decode("utf-8", "surrogateescape")
        else:
            out[name] = v.hex()
    return out


def main():
    sock, mtype = sys.argv[1], sys.argv[2]
    mtype = TYPES[mtype] if mtype in TYPES else int(mtype, 0)
    fields = []
    for arg in sys.argv[3:]:
        name, value = arg.split("=", 1)
        if name in TAG_NUMS:
            tag, kind = TAG_NUMS[name]
        else:
            tag = int(name)
            kind = TAGS.get(tag, ("", "b"))[1]
        fields.append((tag, kind, value))
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock)
    try:
        s.sendall(encode(mtype, fields))
    except OSError:
        pass  # refused at connect (a peer that may ask nothing): the error reply may be waiting
    last = None
    while True:
        try:
            hdr = recv_exact(s, 8)
        except OSError:
            hdr = None
        if hdr is None:
            break
        plen = struct.unpack(">I", hdr[4:8])[0]
        payload = recv_exact(s, plen)
        if payload is None:
            break
        msg = decode(hdr[3], payload)
        print(json.dumps(msg, sort_keys=True))
        last = msg["type"]
        if last in ("OK", "ERROR"):
            break
    sys.stdout.flush()
    sys.exit(0 if last == "OK" else 1 if last == "ERROR" else 2)


if __name__ == "__main__":
    main()
