#!/usr/bin/python3
"""tests/tools/oci_proxy.py - a loopback HTTP proxy in front of an OCI registry, for tests.

  oci_proxy.py --upstream HOST:PORT --port-file FILE [--bearer USER:PASS]
               [--cut-get-after N] [--cut-patch]

--bearer      the proxy demands a Bearer token: requests without "Authorization: Bearer T"
              get 401 with a challenge naming the proxy's /token endpoint, which hands out T
              only for HTTP Basic USER:PASS (a registry with a token service).
--cut-get-after N   the first GET of a blob sends its headers and N body bytes, then closes
                    the connection (a cut download).
--redirect-blobs  blob GETs are answered 307 with the upstream's own URL (another host:
              a registry handing blobs to storage elsewhere; credentials must not follow).
--cut-patch   the first PATCH of more than 1000 bytes reaches the registry, but the
              connection closes before its answer (the client must ask where it got to).
Binds 127.0.0.1 on a free port and writes the port to FILE. Stops on SIGTERM.
"""
import argparse
import base64
import http.client
import http.server
import json
import secrets
import signal
import sys
import threading

args = None
TOKEN = secrets.token_hex(16)
state = {"cut_get": False, "cut_patch": False}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        sys.stderr.write("%s\n" % (fmt % a))

    def once(self, key):
        with lock:
            if state[key]:
                return False
            state[key] = True
            return True

    def challenge(self):
        host = "127.0.0.1:%d" % self.server.server_address[1]
        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}'
        self.send_response(401)
        self.send_header("WWW-Authenticate",
                         'Bearer realm="http://%s/token",service="test-registry"' % host)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def token(self):
        want = "Basic " + base64.b64encode(args.bearer.encode()).decode()
        if self.headers.get("Authorization") != want:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"token": TOKEN}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def forward(self):
        if args.bearer and self.path.startswith("/token"):
            return self.token()
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        if args.redirect_blobs and self.command == "GET" and "/blobs/sha256:" in self.path:
            self.send_response(307)
            self.send_header("Location", "http://%s%s" % (args.upstream, self.path))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        lose_answer = (self.command == "PATCH" and args.cut_patch and n > 1000 and
                       self.once("cut_patch"))
        if args.bearer and self.path != "/v2/" and \
                self.headers.get("Authorization") != "Bearer " + TOKEN:
            return self.challenge()
        up = http.client.HTTPConnection(args.upstream, timeout=30)
        drop = ("authorization", "connection") if args.bearer else ("connection",)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in drop}
        up.request(self.command, self.path, body=body, headers=headers)
        resp = up.getresponse()
        data = resp.read()
        if lose_answer:  # the registry got the chunk, the client never hears so
            up.close()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        cut = (self.command == "GET" and args.cut_get_after is not None and "/blobs/sha256:" in
               self.path and len(data) > args.cut_get_after and self.once("cut_get"))
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data[:args.cut_get_after] if cut else data)
        if cut:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
        up.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--bearer")
    p.add_argument("--cut-get-after", type=int)
    p.add_argument("--cut-patch", action="store_true")
    p.add_argument("--redirect-blobs", action="store_true")
    args = p.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
