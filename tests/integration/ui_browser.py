#!/usr/bin/python3
"""The web console in a real browser (headless Chromium driven by chromedriver + Selenium),
against a pemnd filled by tests/integration/ui_fixture.sh. Prints one PASS:/FAIL: line per
check; exits 1 when any failed. Run by tests/integration/test_ui.sh, which passes the
fixture's expectations as JSON:

    ui_browser.py URL LOCKED_URL OUTDIR EXPECT_JSON

URL: a pemnd with open reads; LOCKED_URL: the same data behind --read-token-required;
OUTDIR: where the screenshots go.
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
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

URL, LOCKED, OUT, EXP = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
FAILS = 0


def ok(name, cond, why=""):
    global FAILS
    if cond:
        print("PASS: ui: " + name, flush=True)
    else:
        FAILS += 1
        print("FAIL: ui: %s%s" % (name, ": " + str(why) if why != "" else ""), flush=True)
    return cond


def api(path, token=None, method="GET", body=None):
    req = urllib.request.Request(URL + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---- the browser ---------------------------------------------------------------------------
port = free_port()
profile = tempfile.mkdtemp(prefix="pemn-ui-chrome-")
log = open(os.path.join(OUT, "chromedriver.log"), "w")
driver_proc = subprocess.Popen(["/usr/bin/chromedriver", "--port=%d" % port],
                               stdout=log, stderr=subprocess.STDOUT)
drv = None


def shutdown():
    if drv is not None:
        try:
            drv.quit()
        except Exception:
            pass
    driver_proc.terminate()
    try:
        driver_proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        driver_proc.kill()
        driver_proc.wait(timeout=10)
    shutil.rmtree(profile, ignore_errors=True)


try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--no-first-run", "--disable-extensions", "--window-size=1366,900",
              "--user-data-dir=" + profile]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Remote(command_executor="http://127.0.0.1:%d" % port, options=opts)
    drv.set_page_load_timeout(30)
except Exception as e:  # noqa: BLE001 - report and stop
    ok("browser starts", False, e)
    shutdown()
    sys.exit(1)


def wait(cond, timeout=15, what="condition"):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - element not there yet
            last = e
        time.sleep(0.1)
    raise TimeoutError("%s not met in %ss (%s)" % (what, timeout, last))


def css(sel):
    return drv.find_element(By.CSS_SELECTOR, sel)


def csss(sel):
    return drv.find_elements(By.CSS_SELECTOR, sel)


def text(sel):
    return css(sel).text.strip()


def console_errors(allowed=()):
    """SEVERE browser log entries since the last call, except the allowed substrings."""
    bad = []
    for e in drv.get_log("browser"):
        if e.get("level") != "SEVERE":
            continue
        if any(a in e.get("message", "") for a in allowed):
            continue
        bad.append(e.get("message"))
    return bad


def shot(name):
    h = drv.execute_script("return Math.max(document.body.scrollHeight, 900)")
    drv.set_window_size(1366, min(int(h) + 40, 4000))
    time.sleep(0.3)
    drv.save_screenshot(os.path.join(OUT, name.replace(" ", "-") + ".png"))
    drv.set_window_size(1366, 900)


def page(hash_, ready, name, allowed=()):
    """Opens #hash, waits for the ready selector; checks the console; writes a screenshot."""
    drv.get(URL + "/ui/#" + hash_)
    try:
        wait(lambda: css(ready), what=ready)
        ok(name + " loads", True)
    except Exception as e:  # noqa: BLE001
        ok(name + " loads", False, e)
        shot(name)
        return False
    time.sleep(0.5)  # let the follow-up requests (accuracy, device counts) finish
    errs = console_errors(allowed)
    ok(name + " without console errors", not errs, errs)
    shot(name)
    return True


def not_pwned(where):
    v = drv.execute_script("return window.__pwned")
    ok(where + ": injected HTML/JS did not run", v is None, v)


def set_token(tok):
    if csss("[data-test=token-forget]"):
        css("[data-test=token-forget]").click()
    wait(lambda: css("[data-test=token-input]"))
    css("[data-test=token-input]").send_keys(tok)
    css("[data-test=token-use]").click()
    wait(lambda: css("[data-test=token-on]"))


def confirm():
    wait(lambda: css("[data-test=confirm-ok]").is_displayed(), what="confirmation dialog")
    css("[data-test=confirm-ok]").click()


def banner():
    return wait(lambda: css("[data-test=banner-text]").text, what="banner")


def fmt_bytes(n):
    units, i, v = ["B", "KiB", "MiB", "GiB"], 0, float(n)
    while v >= 1024 and i < len(units) - 1:
        v, i = v / 1024, i + 1
    if i == 0:
        return "%d B" % n
    return ("%.2f" if v < 10 else "%.1f" if v < 100 else "%.0f") % v + " " + units[i]


try:
    xss = EXP["xss"]
    # what the API says, to compare the pages with
    net = [m for m in api("/v1/models")["models"] if m["name"] == "net"][0]
    EXP["net_ratio"] = net["latest"]["ratio"]
    c2 = api("/v1/models/net/versions/1.1.0/contents")
    EXP["d2_size_text"] = fmt_bytes(c2["size"])
    EXP["masks_text"] = fmt_bytes(c2["bytes"]["masks"])
    EXP["rollout_id"] = api("/v1/fleets/edge")["rollout"]["id"]
    # ---- models ----------------------------------------------------------------------------
    if page("/models", "[data-test=models-table] tbody tr[data-test=model-row]", "models page"):
        ok("models page: 2 models", text("[data-test=models-count]") == "2",
           text("[data-test=models-count]"))
        ok("models page: 3 versions", text("[data-test=versions-count]") == "3")
        rows = csss("tr[data-test=model-row]")
        ok("models page: rows net and tiny",
           [r.find_element(By.CSS_SELECTOR, "td").text for r in rows] == ["net", "tiny"])
        ok("models page: net's ratio to float32", rows[0].find_element(
            By.CSS_SELECTOR, "[data-test=model-ratio]").text == "%.1f×" % EXP["net_ratio"],
            rows[0].text)
    # ---- a model -----------------------------------------------------------------------------
    if page("/models/net", "tr[data-test=version-row]", "model page"):
        wait(lambda: "…" not in "".join(c.text for c in csss("[data-test=accuracy]")),
             what="accuracy cells")
        rows = csss("tr[data-test=version-row]")
        ok("model page: 2 versions, newest first",
           [r.find_element(By.CSS_SELECTOR, "td").text for r in rows] == ["1.1.0", "1.0.0"])
        acc = [c.text for c in csss("[data-test=accuracy]")]
        ok("model page: accuracy from metadata", acc == ["—", "91.20 %"], acc)
        ok("model page: tag stable -> 1.0.0",
           css("tr[data-test=tag-row]").text.split() == ["stable", "1.0.0"])
        ok("model page: tag move needs a token",
           not css("[data-test=tag-move]").is_enabled())
    # ---- a version ---------------------------------------------------------------------------
    if page("/models/net/1.1.0", "[data-test=digest]", "version page"):
        ok("version page: digest", text("[data-test=digest]") == EXP["d2"])
        ok("version page: size", text("[data-test=size]") == EXP["d2_size_text"],
           text("[data-test=size]"))
        kinds = [r.find_elements(By.CSS_SELECTOR, "td")[1].text
                 for r in csss("tr[data-test=proto-row]")]
        ok("version page: a seeded and an explicit prototype", kinds == ["seeded", "explicit"], kinds)
        ok("version page: 3 tensors", len(csss("tr[data-test=tensor-row]")) == 3)
        legend = css("[data-test=bytes-chart-masks]").text
        ok("version page: bytes chart (masks)", EXP["masks_text"] in legend, legend)
        ok("version page: chart has 4 kinds", len(csss("[data-test=bytes-chart] svg.chart rect")) == 4)
        meta = {r.find_elements(By.CSS_SELECTOR, "td")[0].text:
                r.find_elements(By.CSS_SELECTOR, "td")[1].text for r in csss("tr[data-test=meta-row]")}
        ok("version page: metadata HTML shown as text", meta.get("note") == xss, meta.get("note"))
        ok("version page: no element injected by metadata",
           not csss("[data-test=meta-table] img, [data-test=meta-table] script, [data-test=meta-table] b"))
        not_pwned("version page")
        ok("version page: fleets running it", css("tr[data-test=version-fleet-row]").text.split()[:2]
           == ["edge", "target"])
    # ---- fleets ------------------------------------------------------------------------------
    if page("/fleets", "tr[data-test=fleet-row]", "fleets page"):
        wait(lambda: "…" not in css("tr[data-test=fleet-row]").text)
        ok("fleets page: edge with its devices", text("[data-test=fleet-devices]")
           == str(EXP["devices"]), css("tr[data-test=fleet-row]").text)
    # ---- a fleet (read-only) -------------------------------------------------------------------
    if page("/fleets/edge", "[data-test=devices-total]", "fleet page"):
        checks = {"devices-total": EXP["devices"], "rollout-reporting": EXP["reporting"],
                  "rollout-failed": EXP["failed"], "rollout-installed": EXP["installed"],
                  "rollout-in-progress": EXP["downloading"]}
        for k, v in checks.items():
            ok("fleet page: %s = %s" % (k, v), text("[data-test=%s]" % k) == str(v),
               text("[data-test=%s]" % k))
        ok("fleet page: state active", text("[data-test=rollout-state]") == "active")
        ok("fleet page: percent 50", text("[data-test=rollout-percent]") == "50 %")
        ok("fleet page: abort rule", "60 % of at least 5" in text("[data-test=abort-rule]"))
        bars = {g.get_attribute("data-label"): int(g.get_attribute("data-value"))
                for g in csss("[data-test=chart-state] g[data-label]")}
        ok("fleet page: devices by state chart", bars == EXP["by_state"], bars)
        vbars = {g.get_attribute("data-label"): int(g.get_attribute("data-value"))
                 for g in csss("[data-test=chart-version] g[data-label]")}
        ok("fleet page: devices by version chart", vbars == EXP["by_version"], vbars)
        fails = {r.find_elements(By.CSS_SELECTOR, "td")[0].text:
                 int(r.find_elements(By.CSS_SELECTOR, "td")[1].text) for r in csss("tr[data-test=failure-row]")}
        ok("fleet page: failures by reason", fails == EXP["failures"], fails)
        ok("fleet page: progress chart drawn", len(csss("[data-test=progress-chart] polyline")) == 4)
        msgs = [c.text for c in csss("[data-test=report-message]")]
        ok("fleet page: device message HTML shown as text", xss in msgs, msgs[:5])
        ok("fleet page: no element injected by messages",
           not csss("[data-test=reports-table] img, [data-test=reports-table] script, [data-test=reports-table] b"))
        not_pwned("fleet page")
        ok("fleet page: 25 latest reports first", len(csss("tr[data-test=report-row]")) == 25)
        css("[data-test=reports-more]").click()
        try:
            wait(lambda: len(csss("tr[data-test=report-row]")) == EXP["devices"], what="more reports")
            ok("fleet page: show more lists every device", True)
        except TimeoutError as e:
            ok("fleet page: show more lists every device", False, e)
        Select(css("[data-test=reports-filter]")).select_by_value("failed")
        try:
            wait(lambda: len(csss("tr[data-test=report-row]")) == EXP["failed"], what="filter")
            ok("fleet page: reports filtered by state", all(
                r.find_elements(By.CSS_SELECTOR, "td")[1].text == "failed"
                for r in csss("tr[data-test=report-row]")))
        except TimeoutError as e:
            ok("fleet page: reports filtered by state", False, e)
        Select(css("[data-test=reports-filter]")).select_by_value("")
        ok("fleet page: actions need a token", not css("[data-test=action-pause]").is_enabled())
        # live: a report arrives; the page updates without reloading
        drv.execute_script("window.__same_page = 42")
        dev = EXP["downloading_device"]
        api("/v1/fleets/edge/devices/%s/status" % dev, EXP["dev"], "PUT",
            {"state": "installed", "version": "1.1.0", "release": 2, "digest": EXP["d2"]})
        try:
            wait(lambda: text("[data-test=rollout-installed]") == str(EXP["installed"] + 1),
                 timeout=12, what="live update")
            ok("fleet page: updates by itself", True)
        except TimeoutError as e:
            ok("fleet page: updates by itself", False, e)
        ok("fleet page: ... without reloading", drv.execute_script("return window.__same_page") == 42)
        ok("fleet page: live polling without console errors", not console_errors())
        # ---- actions with a token ------------------------------------------------------------
        set_token(EXP["pub"])
        wait(lambda: css("[data-test=action-pause]").is_enabled(), what="pause enabled")
        ok("token kept in sessionStorage", drv.execute_script(
            "return sessionStorage.getItem('pemn.token')") == EXP["pub"])
        ok("token not in a cookie", drv.execute_script("return document.cookie") == "")
        ok("token not in the URL", EXP["pub"] not in drv.current_url)
        css("[data-test=action-pause]").click()
        confirm()
        b = banner()
        ok("pause: the page says done", "done" in b, b)
        ok("pause: the API says paused", api("/v1/fleets/edge")["rollout"]["state"] == "paused")
        wait(lambda: text("[data-test=rollout-state]") == "paused", what="paused shown")
        ok("pause: the page shows paused", True)
        try:
            wait(lambda: csss("[data-test=progress-chart] rect.band-paused"), what="paused band")
            ok("pause: the progress chart shades the paused stretch", True)
        except TimeoutError as e:
            ok("pause: the progress chart shades the paused stretch", False, e)
        ok("pause: audit names the token", api("/v1/audit?action=fleet.pause", EXP["pub"])
           ["entries"][0]["actor"] == "ops")
        # a cancelled confirmation changes nothing
        css("[data-test=action-abort]").click()
        wait(lambda: css("[data-test=confirm-cancel]").is_displayed())
        css("[data-test=confirm-cancel]").click()
        time.sleep(0.5)
        ok("abort cancelled: still paused", api("/v1/fleets/edge")["rollout"]["state"] == "paused")
        # refusal: a read token may not resume; the server's text is shown
        set_token(EXP["rd"])
        wait(lambda: css("[data-test=action-resume]").is_enabled(), what="resume enabled")
        css("[data-test=action-resume]").click()
        confirm()
        b = banner()
        ok("refused resume shows the server's error", "403 forbidden" in b and
           "a read token cannot do this" in b, b)
        ok("refused resume: still paused", api("/v1/fleets/edge")["rollout"]["state"] == "paused")
        console_errors()  # the 403 is expected
        set_token(EXP["pub"])
        wait(lambda: css("[data-test=action-resume]").is_enabled(), what="resume enabled")
        css("[data-test=action-resume]").click()
        confirm()
        wait(lambda: api("/v1/fleets/edge")["rollout"]["state"] == "active", what="resumed")
        ok("resume: the API says active", True)
        inp = css("[data-test=percent-input]")
        inp.click()
        inp.send_keys(Keys.CONTROL + "a")
        inp.send_keys("62.5")
        css("[data-test=action-percent]").click()
        confirm()
        try:
            wait(lambda: api("/v1/fleets/edge")["rollout"]["percent"] == 62.5, what="percent")
            ok("percentage: the API says 62.5", True)
        except TimeoutError as e:
            ok("percentage: the API says 62.5", False, e)
        f = api("/v1/fleets/edge")
        ok("percentage: same rollout, abort rule kept", f["rollout"]["id"] == EXP["rollout_id"] and
           f["rollout"]["abort"] == {"failure_percent": 60, "min_devices": 5}, f["rollout"])
        wait(lambda: text("[data-test=rollout-percent]") == "62.50 %", what="percent shown")
        ok("fleet page with token without console errors", not console_errors(), "")
        shot("fleet-page-token")
    # ---- move a tag ---------------------------------------------------------------------------
    if page("/models/net", "[data-test=tag-move]", "model page with token"):
        tag = css("[data-test=tag-name]")
        tag.clear()
        tag.send_keys("stable")
        Select(css("[data-test=tag-version]")).select_by_value("1.1.0")
        css("[data-test=tag-move]").click()
        confirm()
        try:
            wait(lambda: api("/v1/models/net/tags/stable")["version"] == "1.1.0", what="tag moved")
            ok("move tag: the API says stable -> 1.1.0", True)
        except TimeoutError as e:
            ok("move tag: the API says stable -> 1.1.0", False, e)
        wait(lambda: css("tr[data-test=tag-row]").text.split() == ["stable", "1.1.0"])
        ok("move tag: the page shows it", True)
    # ---- a device ---------------------------------------------------------------------------
    if page("/fleets/edge/devices/" + EXP["xss_device"], "tr[data-test=history-row]", "device page"):
        rows = csss("tr[data-test=history-row]")
        ok("device page: its report history", len(rows) == EXP["xss_device_reports"], len(rows))
        ok("device page: message shown as text", text("[data-test=device-message]") == xss)
        ok("device page: no element injected",
           not csss("main img, main script, [data-test=history-table] b"))
        not_pwned("device page")
    # ---- the audit log ---------------------------------------------------------------------------
    EXP["audit_entries"] = len(api("/v1/audit?limit=100", EXP["pub"])["entries"])
    if page("/audit", "tr[data-test=audit-row]", "audit page"):
        n_all = len(csss("tr[data-test=audit-row]"))
        ok("audit page: entries", n_all == EXP["audit_entries"], n_all)
        css("[data-test=audit-action]").send_keys("fleet")
        css("[data-test=audit-filter]").click()
        wait(lambda: len(csss("tr[data-test=audit-row]")) != n_all, what="filtered")
        acts = [r.find_elements(By.CSS_SELECTOR, "td")[1].text for r in csss("tr[data-test=audit-row]")]
        ok("audit page: filtered by action", acts and all(a.startswith("fleet.") for a in acts), acts)
        ok("audit page: shows the console's pause", "fleet.pause" in acts)
        shot("audit-page-filtered")
    css("[data-test=token-forget]").click()
    if page("/audit", "[data-test=needs-token]", "audit page without a token",
            allowed=("status of 401",)):
        ok("audit page without a token asks for one", "token" in text("[data-test=needs-token]"))
    # ---- reads that require a token -------------------------------------------------------------
    drv.get(LOCKED + "/ui/#/models")
    try:
        wait(lambda: css("[data-test=needs-token]"))
        ok("locked registry: the page asks for a token", True)
    except TimeoutError as e:
        ok("locked registry: the page asks for a token", False, e)
    console_errors()  # the 401 is expected
    drv.save_screenshot(os.path.join(OUT, "locked-needs-token.png"))
    try:
        css("[data-test=token-input]").send_keys(EXP["rd"])
        css("[data-test=token-use]").click()
        wait(lambda: len(csss("tr[data-test=model-row]")) == 2)
        ok("locked registry: a read token shows the models", True)
    except Exception as e:  # noqa: BLE001
        ok("locked registry: a read token shows the models", False, e)
    ok("locked registry: no console errors after the token", not console_errors())
except Exception as e:  # noqa: BLE001 - any unexpected error is a failure, not a crash
    ok("browser session", False, repr(e))
    try:
        drv.save_screenshot(os.path.join(OUT, "error.png"))
    except Exception:  # noqa: BLE001
        pass
finally:
    shutdown()
sys.exit(1 if FAILS else 0)
