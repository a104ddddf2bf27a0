#!/usr/bin/python3
"""The web console's fleet page on a big fleet (docs/BENCHMARKS.md, "Web console").

    bench_ui.py URL FLEET PEMND_PID OUTDIR

Headless Chromium opens /ui/#/fleets/FLEET (cold: a fresh profile) RUNS times and reads the
browser's performance API: first contentful paint, and the 'pemn-fleet-ready' mark the page
sets once the fleet's numbers are on it. Then pemnd's CPU time (utime + stime from
/proc/PID/stat) is measured per refresh: REFRESHES cycles of the page's four polling
requests with If-None-Match (what the open page does every 2 s), against the peer of the
same run: a plain GET /v1/fleets/FLEET (the API's fleet object alone). Finally the page is
left open for OPEN_SECONDS and pemnd's CPU is divided by the refreshes the page made.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.common.by import By

URL, FLEET, PID, OUT = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
RUNS = int(os.environ.get("RUNS", "5"))
REFRESHES = int(os.environ.get("REFRESHES", "100"))
OPEN_SECONDS = int(os.environ.get("OPEN_SECONDS", "20"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu():
    with open("/proc/%d/stat" % PID) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / TICK  # utime, stime (fields 14, 15)


def fetch(path, etag=None):
    req = urllib.request.Request(URL + path)
    if etag:
        req.add_header("If-None-Match", etag)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
            return r.headers.get("ETag")
    except urllib.error.HTTPError as e:
        if e.code == 304:
            return etag
        raise


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


base = "/v1/fleets/" + FLEET
paths = [base, base + "/failures", base + "/progress", base + "/devices?limit=25"]

# ---- server CPU per refresh ---------------------------------------------------------------
etags = {p: fetch(p) for p in paths}
c0 = cpu()
t0 = time.time()
for _ in range(REFRESHES):
    for p in paths:
        etags[p] = fetch(p, etags[p])
c1 = cpu()
t1 = time.time()
peer_tag = fetch(base)
for _ in range(REFRESHES):
    peer_tag = fetch(base, peer_tag)
c2 = cpu()
t2 = time.time()
cold0 = cpu()
for _ in range(REFRESHES):
    for p in paths:
        fetch(p)  # no ETag: full bodies
cold1 = cpu()
refresh_ms = 1000 * (c1 - c0) / REFRESHES
peer_ms = 1000 * (c2 - c1) / REFRESHES
cold_ms = 1000 * (cold1 - cold0) / REFRESHES
print("pemnd CPU per page refresh (4 requests, If-None-Match -> 304): %.2f ms"
      " (wall %.2f ms)" % (refresh_ms, 1000 * (t1 - t0) / REFRESHES))
print("pemnd CPU per refresh without ETags (4 full bodies): %.2f ms" % cold_ms)
print("peer, GET %s alone (304): %.2f ms (wall %.2f ms); refresh / peer = %.2fx"
      % (base, peer_ms, 1000 * (t2 - t1) / REFRESHES, refresh_ms / peer_ms if peer_ms else 0))

# ---- the browser ----------------------------------------------------------------------------
port = free_port()
log = open(os.path.join(OUT, "chromedriver-bench.log"), "w")
proc = subprocess.Popen(["/usr/bin/chromedriver", "--port=%d" % port], stdout=log,
                        stderr=subprocess.STDOUT)
rc = 0
try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    results = {FLEET: [], "small": []}
    for run in range(2 * RUNS):  # alternating: the big fleet, then the peer
        fleet = FLEET if run % 2 == 0 else "small"
        profile = tempfile.mkdtemp(prefix="pemn-bench-chrome-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--window-size=1366,900",
                  "--user-data-dir=" + profile]:
            opts.add_argument(a)
        drv = webdriver.Remote(command_executor="http://127.0.0.1:%d" % port, options=opts)
        try:
            drv.get(URL + "/ui/#/fleets/" + fleet)
            end = time.time() + 60
            ready = None
            while time.time() < end and not ready:
                ready = drv.execute_script(
                    "const m = performance.getEntriesByName('pemn-fleet-ready');"
                    "return m.length ? m[0].startTime : null")
                if not ready:
                    time.sleep(0.02)
            fcp = drv.execute_script(
                "const p = performance.getEntriesByName('first-contentful-paint');"
                "return p.length ? p[0].startTime : null")
            total = drv.find_element(By.CSS_SELECTOR, "[data-test=devices-total]").text
            results[fleet].append((fcp, ready, total))
            if run == 2 * RUNS - 2:  # leave it open: pemnd's CPU per refresh the page makes
                n0 = drv.execute_script(
                    "return performance.getEntriesByType('resource')"
                    ".filter(e => e.name.includes('/failures')).length")
                k0 = cpu()
                time.sleep(OPEN_SECONDS)
                k1 = cpu()
                n1 = drv.execute_script(
                    "return performance.getEntriesByType('resource')"
                    ".filter(e => e.name.includes('/failures')).length")
                drv.save_screenshot(os.path.join(OUT, "bench-fleet-page.png"))
        finally:
            drv.quit()
            shutil.rmtree(profile, ignore_errors=True)
    med = {}
    for fleet, rs in results.items():
        for i, (fcp, ready, total) in enumerate(rs):
            print("%s run %d: first contentful paint %.0f ms, fleet data on the page %.0f ms,"
                  " devices shown %s" % (fleet, i + 1, fcp or -1, ready or -1, total))
        fcps = sorted(r[0] for r in rs if r[0])
        readys = sorted(r[1] for r in rs if r[1])
        if fcps and readys:
            med[fleet] = (fcps[len(fcps) // 2], readys[len(readys) // 2])
            print("%s median: first paint %.0f ms, data loaded %.0f ms" % ((fleet,) + med[fleet]))
    if FLEET in med and "small" in med:
        print("ratio %s / small (100 devices): first paint %.2fx, data loaded %.2fx"
              % (FLEET, med[FLEET][0] / med["small"][0], med[FLEET][1] / med["small"][1]))
    readys = [r[1] for r in results[FLEET] if r[1]]
    if n1 > n0:
        print("page left open %d s: %d refreshes, pemnd CPU %.2f ms per refresh"
              % (OPEN_SECONDS, n1 - n0, 1000 * (k1 - k0) / (n1 - n0)))
    if not readys:
        rc = 1
except Exception as e:  # noqa: BLE001
    print("bench_ui: browser run failed: %r" % (e,), file=sys.stderr)
    rc = 1
finally:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
sys.exit(rc)
