"""Shared pieces of the leadscore Python client tests: a real `leadscore
serve` on a temporary store with ephemeral loopback ports.

The binary comes from $LEADSCORE_BIN (default: build-dev/leadscore in this
repository).  Every wait is bounded.
"""

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

TESTS = os.path.dirname(os.path.abspath(__file__))
PKG_DIR = os.path.dirname(TESTS)                    # clients/python
REPO = os.path.dirname(os.path.dirname(PKG_DIR))

#: set by run_tests.sh: the package must come from the venv it installed
EXPECT_INSTALLED = os.environ.get("LEADSCORE_EXPECT_INSTALLED") == "1"
if not EXPECT_INSTALLED and PKG_DIR not in sys.path:
    sys.path.insert(0, PKG_DIR)                     # run from the source tree

from leadscore import Client  # noqa: E402

BIN = os.environ.get("LEADSCORE_BIN", os.path.join(REPO, "build-dev", "leadscore"))

EVENT_TYPES = [
    "page_view", "product_view", "search", "add_to_cart", "remove_from_cart",
    "checkout", "purchase", "refund", "review", "email_open", "email_click",
    "sms_click", "signup", "referral", "share", "support_ticket", "profile"]

SCORE_FIELDS = [
    "customer", "known", "score", "score_100", "tier", "p_alive",
    "expected_purchases_30d", "clv", "customer_type", "phase", "actions",
    "segments", "model"]

REQUESTS_RE = re.compile(r"^\s+requests\s+(tcp://\S+)")
EVENTS_RE = re.compile(r"^\s+events\s+(tcp://\S+)")


def uid(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def ev(customer, etype, **fields):
    e = {"customer": customer, "type": etype, "event_id": uid("ev")}
    e.update(fields)
    return e


def free_port():
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=5.0, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


class Server:
    """One `leadscore serve` process on a temporary store."""

    def __init__(self, data_dir, bind="tcp://127.0.0.1:*",
                 pull="tcp://127.0.0.1:*", extra=()):
        self.data_dir = data_dir
        self.args = [BIN, "serve", "--data", data_dir, "--bind", bind,
                     "--pull", pull, "--workers", "2"] + list(extra)
        self.proc = None
        self.endpoint = None
        self.pull_endpoint = None
        self._stderr = None
        self._stderr_text = ""

    def start(self, timeout=10.0):
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE,
                                     stderr=self._stderr, stdin=subprocess.DEVNULL)
        lines = queue.Queue()

        def drain(out):
            for line in iter(out.readline, b""):
                lines.put(line.decode("utf-8", "replace"))
            lines.put(None)
        self._drain = threading.Thread(target=drain, args=(self.proc.stdout,), daemon=True)
        self._drain.start()
        deadline = time.monotonic() + timeout
        seen = []
        while self.endpoint is None or self.pull_endpoint is None:
            left = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(0.01, left)) if left > 0 else None
            except queue.Empty:
                line = None
            if line is None:
                self.kill()
                raise RuntimeError("leadscore serve did not report its endpoints "
                                   "within %gs\nstdout: %s\nstderr: %s"
                                   % (timeout, "".join(seen), self.stderr_text()))
            seen.append(line)
            m = REQUESTS_RE.match(line)
            if m:
                self.endpoint = m.group(1)
            m = EVENTS_RE.match(line)
            if m:
                self.pull_endpoint = m.group(1)
        return self

    def stop(self, timeout=15.0):
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._release()
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._release()

    def _release(self):
        if self.proc is not None:
            self._drain.join(5)
            self.proc.stdout.close()
            self.proc = None
        if self._stderr is not None:
            self._stderr.seek(0)
            self._stderr_text = self._stderr.read().decode("utf-8", "replace")
            self._stderr.close()
            self._stderr = None

    def stderr_text(self):
        if self._stderr is not None:
            self._stderr.seek(0)
            return self._stderr.read().decode("utf-8", "replace")
        return self._stderr_text


def setUpModule():
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        raise RuntimeError(
            "no leadscore binary at %s: build it (cmake -S . -B build-dev && "
            "cmake --build build-dev --target leadscore) or set LEADSCORE_BIN" % BIN)


class ServerTestCase(unittest.TestCase):
    """A shared server for the class; tests use their own customer ids."""

    server_extra = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="leadscore-pytest-")
        cls.server = Server(os.path.join(cls.tmp, "data"), extra=cls.server_extra).start()

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.server.stop()
            if rc != 0:
                raise AssertionError("leadscore serve exited %r on SIGTERM\n%s"
                                     % (rc, cls.server.stderr_text()))
        finally:
            cls.server.kill()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.ls = Client(self.server.endpoint, timeout=2.0, retries=1)

    def tearDown(self):
        self.ls.close()

