"""Fixtures of the Python tests (run by tests/integration/test_python.sh, or directly:
PYTHONPATH=python /usr/bin/python3 -m pytest tests/python)."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "examples"))
BUILD = os.environ.get("BUILD", "build/release")
PEMN_BIN = os.environ.get("PEMN_BIN", os.path.join(ROOT, BUILD, "bin", "pemn"))
PEMND_BIN = os.environ.get("PEMND_BIN", os.path.join(ROOT, BUILD, "bin", "pemnd"))
FMNIST = os.environ.get("PEMN_FMNIST", "/usr/share/datasets/fashion-mnist")

# On the PostgreSQL leg of make test (tests/run.sh): a cluster from tests/pg/cluster.sh. Then
# only the tests that use pemnd (the fixture below) run, on a database of that cluster.
PG_HOST = os.environ.get("PEMN_TEST_PG_HOST", "")

import pemn  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if not PG_HOST:
        return
    keep = [i for i in items if "pemnd" in getattr(i, "fixturenames", ())]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep


def run(*args, check=True, **kw):
    return subprocess.run([str(a) for a in args], check=check, capture_output=True, text=True,
                          timeout=300, **kw)


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    """(key, pub, other_key, other_pub): two publisher keys made by pemn.keygen."""
    d = tmp_path_factory.mktemp("keys")
    pemn.keygen(str(d / "alice"))
    pemn.keygen(str(d / "mallory"))
    return (str(d / "alice.key"), str(d / "alice.pub"), str(d / "mallory.key"),
            str(d / "mallory.pub"))


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


@pytest.fixture(scope="session")
def pemnd(tmp_path_factory, keys):
    """A real pemnd on a free 127.0.0.1 port trusting alice: (url, publish token). Stopped
    (by its pid) at the end of the session."""
    d = tmp_path_factory.mktemp("pemnd")
    db = str(d / "pemn.db")
    if PG_HOST:  # the PostgreSQL leg: a fresh database of the test cluster
        db = run("bash", os.path.join(ROOT, "tests", "pg", "cluster.sh"), "newdb", PG_HOST,
                 "py_%d_%s" % (os.getpid(), d.name)).stdout.strip()
    run(PEMND_BIN, "--db", db, "key", "add", keys[1], "--name", "alice")
    tok = run(PEMND_BIN, "--db", db, "token", "create", "--scope", "publish", "--name",
              "py").stdout.strip().splitlines()[-1]
    proc = None
    for _ in range(5):
        port = _free_port()
        url = "http://127.0.0.1:%d" % port
        log = open(str(d / "pemnd.log"), "ab")
        proc = subprocess.Popen([PEMND_BIN, "--db", db, "--listen", "127.0.0.1:%d" % port],
                                stdout=log, stderr=log)
        ok = False
        for _ in range(100):
            if proc.poll() is not None:
                break
            try:
                urllib.request.urlopen(url + "/v1/health", timeout=1)
                ok = True
                break
            except Exception:
                time.sleep(0.1)
        if ok:
            break
        proc.kill()
        proc.wait(timeout=10)
        proc = None
    if proc is None:
        pytest.fail("pemnd did not start")
    yield url, tok
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def have_fmnist():
    return os.path.exists(os.path.join(FMNIST, "t10k-labels-idx1-ubyte.gz")) or \
        os.path.exists(os.path.join(FMNIST, "t10k-labels-idx1-ubyte"))


def listdir_clean(d):
    """Files in d (for "nothing left behind" checks)."""
    return sorted(os.listdir(d))


__all__ = ["run", "ROOT", "BUILD", "PEMN_BIN", "PEMND_BIN", "FMNIST", "have_fmnist", "shutil"]
