#!/usr/bin/python3
"""A hostile registry for CLI hardening tests (docs/SECURITY.md items 7, 11, 12).

  hostile_registry.py PORT_FILE SCRIPT.json

SCRIPT maps "METHOD PATH" to {"status": N, "body": "...", "file": "path"}; a "file" entry
serves that file's bytes (application/vnd.pemn), trickled when "trickle": [BYTES, MS] (BYTES
every MS milliseconds). Listens on 127.0.0.1, a free port written to
PORT_FILE. Any path not in the script answers 404. The script is re-read on every request,
so a test can change what the registry says between commands.
"""
import http.server
import json
import sys
import time


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, method):
        with open(sys.argv[2]) as f:
            script = json.load(f)
        e = script.get(method + " " + self.path.split("?")[0])
        if e is None:
            e = {"status": 404, "body": '{"error":{"code":"not_found","message":"no"}}'}
        if "file" in e:
            with open(e["file"], "rb") as f:
                data = f.read()
            ctype = "application/vnd.pemn"
        else:
            data = e.get("body", "").encode("utf-8", "surrogateescape")
            ctype = "application/json"
        self.send_response(e.get("status", 200))
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if method == "HEAD":
            return
        step, ms = e.get("trickle", [len(data) or 1, 0])
        try:
            for i in range(0, len(data), step):
                self.wfile.write(data[i:i + step])
                self.wfile.flush()
                if ms:
                    time.sleep(ms / 1000.0)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        self.answer("GET")

    def do_HEAD(self):
        self.answer("HEAD")


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
with open(sys.argv[1], "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
