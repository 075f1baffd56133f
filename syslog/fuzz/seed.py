#!/usr/bin/env python3
"""Writes the fuzz seed corpus from Loghub's Linux and OpenSSH logs (both
are syslog lines): corpus/parse/ gets single messages (RFC 3164 as logged,
with a PRI, and as RFC 5424 with structured data), corpus/framer/ gets
streams of them in newline and octet-counting framing.

    python3 seed.py [path/to/loghub]    # default: ../../../shared/data/loghub
"""
import hashlib
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
loghub = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "../../../shared/data/loghub")
lines = []
for name in ("Linux/Linux_2k.log", "OpenSSH/OpenSSH_2k.log"):
    with open(os.path.join(loghub, name), encoding="utf-8", errors="replace") as f:
        lines += [l.rstrip("\n") for l in f][:60]


def write(kind, data):
    d = os.path.join(here, "corpus", kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


messages = []
for i, line in enumerate(lines):
    pri = (i * 7) % 192
    rfc3164 = f"<{pri}>{line}"
    # "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: text" → RFC 5424.
    parts = line.split(" ", 4)
    host, rest = (parts[3], parts[4]) if len(parts) == 5 else ("-", line)
    app, _, msg = rest.partition(": ")
    app = app.split("[")[0] or "-"
    rfc5424 = f'<{pri}>1 2026-11-21T10:00:{i % 60:02}.{i:03}Z {host} {app} {1000 + i} ID{i} [origin ip="10.0.0.{i % 255}" seq="{i}"][meta x="a\\"b"] {msg}'
    messages += [rfc3164, rfc5424]
for m in messages:
    write("parse", m.encode())
# Framer input: byte 0 picks the size limit, byte 1 the read size.
for i in range(0, len(messages), 6):
    group = [m.encode() for m in messages[i : i + 6]]
    newline = b"\n".join(group) + b"\n"
    counted = b"".join(b"%d %s" % (len(m), m) for m in group)
    mixed = b"".join(b"%d %s" % (len(m), m) if j % 2 else m + b"\r\n" for j, m in enumerate(group))
    for j, stream in enumerate((newline, counted, mixed)):
        write("framer", bytes([(40 + i + j) % 256, 3 + j]) + stream)
print("seeded", len(messages), "messages")
