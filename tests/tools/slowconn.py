#!/usr/bin/python3
"""Hostile HTTP client for pemnd hardening tests (docs/SECURITY.md).

  slowconn.py headers HOST PORT SRC N SECONDS
      N connections from source address SRC, each sending its request head one byte
      every 0.5 s; prints how many the server closed within SECONDS, then closes the rest.
  slowconn.py upload HOST PORT N CLEN SEND SECONDS TOKEN
      N PUT uploads declaring Content-Length CLEN, each sending SEND bytes then holding the
      connection for SECONDS; prints "held" when all were sent, then waits and closes.
  slowconn.py trickle HOST PORT CLEN RATE SECONDS TOKEN
      one PUT declaring CLEN that sends RATE bytes/s; prints the status line it got back
      within SECONDS (or "closed" / "none").
"""
import socket
import sys
import time


def connect(host, port, src=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if src:
        s.bind((src, 0))
    s.settimeout(5)
    s.connect((host, port))
    return s


def closed(s):
    s.setblocking(False)
    try:
        d = s.recv(4096)
        return d == b"" or d.startswith(b"HTTP/")
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


def headers(host, port, src, n, secs):
    head = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"
    conns = []
    for _ in range(n):
        try:
            conns.append(connect(host, port, src))
        except OSError:
            break
    print("opened", len(conns), flush=True)
    t0 = time.time()
    i = 0
    gone = set()
    while time.time() - t0 < secs and len(gone) < len(conns):
        for k, c in enumerate(conns):
            if k in gone:
                continue
            try:
                c.send(head[i:i + 1])
            except OSError:
                gone.add(k)
                continue
            if closed(c):
                gone.add(k)
        i = min(i + 1, len(head) - 5)
        time.sleep(0.5)
    print("closed", len(gone), flush=True)
    for c in conns:
        c.close()


def upload(host, port, n, clen, send, secs, token):
    conns = []
    for _ in range(n):
        c = connect(host, port)
        c.sendall(("PUT /v1/models/big/versions/1.0.0 HTTP/1.1\r\nHost: x\r\n"
                   "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (token, clen)).encode())
        conns.append(c)
    chunk = b"\x01" * 65536
    for c in conns:
        left = send
        while left > 0:
            k = min(left, len(chunk))
            c.sendall(chunk[:k])
            left -= k
    print("held", flush=True)
    time.sleep(secs)
    for c in conns:
        c.close()


def trickle(host, port, clen, rate, secs, token):
    c = connect(host, port)
    c.sendall(("PUT /v1/models/slow/versions/1.0.0 HTTP/1.1\r\nHost: x\r\n"
               "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (token, clen)).encode())
    t0 = time.time()
    c.setblocking(False)
    while time.time() - t0 < secs:
        try:
            c.send(b"\x02" * rate)
        except BlockingIOError:
            pass
        except OSError:
            break
        try:
            d = c.recv(4096)
            print(d.split(b"\r\n")[0].decode() if d else "closed", flush=True)
            return
        except BlockingIOError:
            pass
        except OSError:
            print("closed", flush=True)
            return
        time.sleep(1)
    print("none", flush=True)


if __name__ == "__main__":
    a = sys.argv
    if a[1] == "headers":
        headers(a[2], int(a[3]), a[4], int(a[5]), float(a[6]))
    elif a[1] == "upload":
        upload(a[2], int(a[3]), int(a[4]), int(a[5]), int(a[6]), float(a[7]), a[8])
    elif a[1] == "trickle":
        trickle(a[2], int(a[3]), int(a[4]), int(a[5]), float(a[6]), a[7])
