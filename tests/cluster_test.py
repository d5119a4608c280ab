#!/usr/bin/env python3
"""cluster_test.py -- end-to-end test of leadscore's cluster mode on loopback.

    python3 tests/cluster_test.py --leadscore BUILD/leadscore [--keep] [--faults LIST] [--self-check]

Run from anywhere (paths are resolved from this file's location); ctest runs
it from the repository root.  Exit status: 0 pass, 1 failure (the reasons are
listed at the end), 77 skip (nats-server is not installed, or the binary was
built without NATS).

What it does (cluster mode: docs/PROTOCOL.md section 8; the scale-out design note, CI test plan):

 1. `scripts/cluster.sh up` starts 3 nats-server processes and 2 shard nodes
    (8 partitions, a cluster name unique to this run) in a temporary
    directory D; a single-node control `leadscore serve` runs on D/control.
 2. `leadscore gen --customers 2000 --days 30 --seed 7` gives ~20 k events,
    each with an event_id.  They are sent in order, in `track` batches of
    100, to the control and to node1 (which publishes every partition);
    every batch waits for its ack, and a batch that times out or gets
    `unavailable` is sent again with the same event ids until acked.
 3. Faults while streaming: at 30 % of the batches the NATS server leading
    the most partitions is killed with SIGKILL, at 50 % node2 is; each is
    restarted 3 s later (`cluster.sh start NAME`) from a timer thread.
 4. Settle: `leadscore cluster status --json` until ready and every lag 0.
 5. Checks: the cluster answers `profile` and `score` (single and batched,
    fixed `now`) exactly like the control, for every customer id, floats
    compared bit for bit; the per-type event counts summed over customers
    equal the events sent (nothing lost, nothing doubled); node2 answers
    like node1; the `log` of every track reply names exactly the partitions
    the contract's hash gives for the batch's customers; resending an acked
    batch to node2 changes nothing; node1 rebuilt from the log (stopped,
    its data deleted, restarted) answers like the control again; the
    `cluster` op lists the owners' endpoints; and `leadscore rescore` of
    each node's own store equals the control's byte for byte (a read via a
    node may be answered by the other one, the store check is not).
    Sanitizer reports in any process log fail the test.  When the cluster
    does not settle, the report shows each partition's status, what every
    nats-server says of the streams and consumers (/jsz) and the nodes'
    counters (`stats`).

Options for investigating: --keep (leave D), --faults nats|node2|none,
--restart-after SECS, --time-limit SECS; LEADSCORE_KEEP_FAILED=1 keeps D
only when the test fails.

Every wait has a deadline; the whole run is bounded by --time-limit
(default 170 s).  Every process is stopped in a finally block (cluster.sh
down, then a SIGKILL by PID for anything from D/*.pid still running).

--self-check runs the same streaming and comparison code against a second
single-node server instead of the cluster (killed with SIGKILL at 50 % and
restarted on the same ports): a test of this script, not of cluster mode.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

try:
    import msgpack
    import zmq
except ImportError as e:  # not a skip: CI is meant to have them
    print("cluster_test: FAIL: python modules zmq and msgpack are needed (%s); "
          "use /usr/bin/python3 or pip install pyzmq msgpack" % e, file=sys.stderr)
    sys.exit(1)

SKIP = 77
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER_SH = os.path.join(REPO, "scripts", "cluster.sh")

PARTITIONS = 8
NODES = 2
BATCH = 100
GEN_ARGS = ["--customers", "2000", "--days", "30", "--seed", "7"]
ATTEMPT_TIMEOUT = 5.0     # one track attempt waits this long for its ack
BATCH_DEADLINE = 60.0     # a batch is retried for at most this long
SETTLE_DEADLINE = 60.0
RESTART_AFTER = 3.0
EVENT_TYPES = ("page_view", "product_view", "search", "add_to_cart",
               "remove_from_cart", "checkout", "purchase", "refund", "review",
               "email_open", "email_click", "sms_click", "signup", "referral",
               "share", "support_ticket", "profile")
DAY_MS = 86400000

T0 = time.monotonic()


class Fatal(Exception):
    """A failure after which the test cannot go on."""


class TimeLimit(BaseException):
    """The whole-run deadline (SIGALRM) or SIGTERM."""


def log(msg: str) -> None:
    # never let a closed stdout (a pipe to `head`) skip the cleanup
    try:
        print("[%6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)
    except (BrokenPipeError, OSError):
        pass


# -- the contract's partition function ---------------------------------------

M64 = (1 << 64) - 1


def partition_of(cid: str, parts: int) -> int:
    h = 14695981039346656037
    for b in cid.encode("utf-8"):
        h ^= b
        h = (h * 1099511628211) & M64
    k = h
    k ^= k >> 33
    k = (k * 0xff51afd7ed558ccd) & M64
    k ^= k >> 33
    k = (k * 0xc4ceb9fe1a85ec53) & M64
    k ^= k >> 33
    return k % parts


# -- failures that do not stop the run -----------------------------------------


class Checks:
    def __init__(self) -> None:
        self.failures: list = []
        self.lock = threading.Lock()

    def fail(self, msg: str) -> None:
        with self.lock:
            self.failures.append(msg)
        log("FAIL: " + msg)

    def check(self, cond: bool, msg: str) -> bool:
        if not cond:
            self.fail(msg)
        return bool(cond)


CHECKS = Checks()


# -- a small DEALER client ------------------------------------------------------


class Timeout(Exception):
    pass


class Conn:
    """DEALER speaking the REQ envelope; replies matched by `id`.  After a
    timeout the socket is closed and a fresh one connected (what was queued
    is dropped), so a stuck connection never blocks the next attempt."""

    def __init__(self, ctx: zmq.Context, endpoint: str) -> None:
        self.ctx = ctx
        self.endpoint = endpoint
        self.sock = None
        self.next_id = random.randrange(1, 1 << 30)
        self.late = 0

    def _socket(self):
        if self.sock is None:
            s = self.ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SNDTIMEO, 2000)
            s.connect(self.endpoint)
            self.sock = s
        return self.sock

    def reset(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None

    def close(self) -> None:
        self.reset()

    def many(self, reqs: list, timeout: float, window: int = 64) -> list:
        """Send every request (at most `window` in flight); return the reply
        maps (ok or not) in request order.  Raises Timeout (after resetting
        the socket) when not all came back within `timeout` seconds."""
        sock = self._socket()
        replies = [None] * len(reqs)
        inflight = {}
        todo = 0
        done = 0
        deadline = time.monotonic() + timeout
        while done < len(reqs):
            while todo < len(reqs) and len(inflight) < window:
                rid = self.next_id
                self.next_id += 1
                msg = dict(reqs[todo])
                msg["id"] = rid
                try:
                    sock.send_multipart([b"", msgpack.packb(msg, use_bin_type=True)])
                except zmq.Again:
                    self.reset()
                    raise Timeout("could not send to %s (send queue full)" % self.endpoint)
                inflight[rid] = todo
                todo += 1
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(max(1, int(left * 1000)), zmq.POLLIN):
                self.reset()
                raise Timeout("%d of %d replies from %s missing after %.1fs"
                              % (len(reqs) - done, len(reqs), self.endpoint, timeout))
            frames = sock.recv_multipart()
            try:
                reply = msgpack.unpackb(frames[-1], raw=False, strict_map_key=False)
            except Exception as e:
                raise Fatal("reply from %s is not msgpack: %s (%r)"
                            % (self.endpoint, e, frames[-1][:200]))
            if not isinstance(reply, dict):
                raise Fatal("reply from %s is not a map: %r" % (self.endpoint, reply))
            i = inflight.pop(reply.get("id"), None) if isinstance(reply.get("id"), int) else None
            if i is None:
                self.late += 1  # a reply to an abandoned attempt
                continue
            reply.pop("id", None)
            replies[i] = reply
            done += 1
        return replies

    def call(self, req: dict, timeout: float) -> dict:
        return self.many([req], timeout)[0]

    def reads(self, reqs: list, what: str, timeout: float = 20.0, attempts: int = 3) -> list:
        """Idempotent reads, retried on a timeout (fresh socket).  Every reply
        must be ok: an error reply is Fatal (with the request)."""
        for a in range(attempts):
            try:
                replies = self.many(reqs, timeout)
                break
            except Timeout as e:
                log("  %s: %s (attempt %d of %d)" % (what, e, a + 1, attempts))
        else:
            raise Fatal("%s: no complete answer from %s in %d attempts of %.0fs"
                        % (what, self.endpoint, attempts, timeout))
        for req, rep in zip(reqs, replies):
            if rep.get("ok") is not True:
                shown = dict(req)
                if "customers" in shown:
                    shown["customers"] = "[%d ids]" % len(shown["customers"])
                raise Fatal("%s: %s answered %r to %r" % (what, self.endpoint, rep, shown))
        return replies


# -- comparing replies -------------------------------------------------------------


def fbits(x: float) -> bytes:
    return struct.pack("<d", x)


def short(x, n: int = 160) -> str:
    r = repr(x)
    return r if len(r) <= n else r[:n] + "..."


def diff(a, b, path: str, out: list, limit: int = 20) -> None:
    """Differences between two decoded replies; floats compared bit for bit
    (NaN equals NaN of the same bits, 0.0 differs from -0.0)."""
    if len(out) >= limit:
        return
    if type(a) is not type(b):
        out.append("%s: %s (%s) vs %s (%s)" % (path, short(a), type(a).__name__, short(b),
                                                type(b).__name__))
    elif isinstance(a, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a:
                out.append("%s.%s: missing vs %s" % (path, k, short(b[k])))
            elif k not in b:
                out.append("%s.%s: %s vs missing" % (path, k, short(a[k])))
            else:
                diff(a[k], b[k], "%s.%s" % (path, k), out, limit)
    elif isinstance(a, list):
        if len(a) != len(b):
            out.append("%s: list of %d vs %d: %s vs %s" % (path, len(a), len(b), short(a), short(b)))
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                diff(x, y, "%s[%d]" % (path, i), out, limit)
    elif isinstance(a, float):
        if fbits(a) != fbits(b):
            rel = abs(a - b) / max(abs(a), abs(b)) if max(abs(a), abs(b)) > 0 else 0.0
            out.append("%s: %r vs %r (floats differ, relative %.3g)" % (path, a, b, rel))
    elif a != b:
        out.append("%s: %s vs %s" % (path, short(a), short(b)))


def compare_sets(label: str, ids: list, want: list, got: list, want_name: str,
                 got_name: str) -> list:
    """Compare replies per customer; report the first few differences.
    Returns the ids that differ."""
    bad = []
    shown = 0
    for cid, w, g in zip(ids, want, got):
        d: list = []
        diff(w, g, "", d)
        if d:
            bad.append(cid)
            if shown < 5:
                shown += 1
                log("  %s: customer %r differs (%s vs %s): %s%s"
                    % (label, cid, want_name, got_name, "; ".join(d[:6]),
                       " ..." if len(d) > 6 else ""))
    return bad


# -- processes ----------------------------------------------------------------------


def run(cmd: list, timeout: float, what: str, check: bool = True, env=None, cwd=REPO):
    t = time.monotonic()
    try:
        r = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise Fatal("%s: %s did not finish within %.0fs\nstdout: %s\nstderr: %s"
                    % (what, " ".join(cmd), timeout,
                       (e.stdout or b"").decode(errors="replace")[-2000:],
                       (e.stderr or b"").decode(errors="replace")[-2000:]))
    out = r.stdout.decode(errors="replace")
    err = r.stderr.decode(errors="replace")
    if check and r.returncode != 0:
        raise Fatal("%s: `%s` exited %d after %.1fs\nstdout: %s\nstderr: %s"
                    % (what, " ".join(cmd), r.returncode, time.monotonic() - t,
                       out[-3000:], err[-3000:]))
    return r.returncode, out, err


def read_file(path: str) -> str:
    with open(path, "r") as f:
        return f.read().strip()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purposes
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pid_cmdline(pid: int) -> str:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Single:
    """A single-node `leadscore serve` we start ourselves."""

    def __init__(self, binary: str, data: str, name: str, bind: str = "tcp://127.0.0.1:0",
                 pull: str = "tcp://127.0.0.1:0") -> None:
        self.binary, self.data, self.name = binary, data, name
        self.bind, self.pull = bind, pull
        self.proc = None
        self.endpoint = None
        self.pull_ep = None

    def start(self, ctx: zmq.Context, timeout: float = 15.0) -> None:
        out = self.data + ".out"
        self.out_path = out
        self.err_path = self.data + ".log"
        with open(out, "wb") as fo, open(self.err_path, "ab") as fe:
            self.proc = subprocess.Popen(
                [self.binary, "serve", "--data", self.data, "--bind", self.bind,
                 "--pull", self.pull, "--log-level", "warn"],
                # in D, like the nodes cluster.sh starts: no models/ there, so
                # both serve the built-in copy of models/default.json
                cwd=os.path.dirname(self.data), stdin=subprocess.DEVNULL, stdout=fo, stderr=fe)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise Fatal("%s: `leadscore serve` exited %s at start; log:\n%s"
                            % (self.name, self.proc.returncode, tail(self.err_path)))
            for line in open(out, "r", errors="replace"):
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "requests":
                    self.endpoint = parts[1]
                elif len(parts) >= 2 and parts[0] == "events":
                    self.pull_ep = parts[1]
            if self.endpoint:
                break
            if time.monotonic() > deadline:
                raise Fatal("%s: serve printed no `requests` endpoint within %.0fs"
                            % (self.name, timeout))
            time.sleep(0.05)
        # pin the ports for a restart on the same endpoints
        self.bind = self.endpoint
        if self.pull_ep:
            self.pull = self.pull_ep
        c = Conn(ctx, self.endpoint)
        try:
            while True:
                try:
                    r = c.call({"op": "ping"}, 1.0)
                    if r.get("ok"):
                        return
                except Timeout:
                    pass
                if time.monotonic() > deadline:
                    raise Fatal("%s: no answer to ping on %s within %.0fs"
                                % (self.name, self.endpoint, timeout))
        finally:
            c.close()

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def tail(path: str, n: int = 25) -> str:
    try:
        with open(path, "r", errors="replace") as f:
            lines = f.readlines()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    return "".join("    | " + ln for ln in lines[-n:])


# -- the cluster, driven by scripts/cluster.sh --------------------------------------


class Cluster:
    def __init__(self, binary: str, d: str, name: str) -> None:
        self.binary, self.d, self.name = binary, d, name
        self.urls = None
        self.restarts: list = []     # (name, rc, out, err, seconds)
        self.timers: list = []

    def sh(self, args: list, timeout: float, what: str, check: bool = True):
        return run(["bash", CLUSTER_SH] + args, timeout, what, check)

    def up(self) -> None:
        t = time.monotonic()
        self.sh(["up", "--dir", self.d, "--nodes", str(NODES), "--partitions", str(PARTITIONS),
                 "--cluster", self.name, "--leadscore", self.binary], 90, "cluster.sh up")
        self.urls = read_file(os.path.join(self.d, "nats.urls"))
        log("cluster.sh up: %.1fs; nats %s" % (time.monotonic() - t, self.urls))

    def ep(self, node: str) -> str:
        return read_file(os.path.join(self.d, node + ".ep"))

    def pid(self, name: str) -> int:
        return int(read_file(os.path.join(self.d, name + ".pid")))

    def status(self, timeout: float = 15.0) -> dict:
        rc, out, err = run([self.binary, "cluster", "status", "--nats", self.urls,
                            "--cluster", self.name, "--json"], timeout, "cluster status",
                           check=False)
        if rc != 0:
            raise Fatal("cluster status exited %d: %s" % (rc, (err or out).strip()[-500:]))
        try:
            st = json.loads(out)
        except ValueError as e:
            raise Fatal("cluster status --json printed no JSON object (%s): %r" % (e, out[:500]))
        if not isinstance(st, dict) or not isinstance(st.get("parts"), list):
            raise Fatal("cluster status --json: no parts list: %r" % (out[:500],))
        return st

    def kill9(self, name: str) -> int:
        pid = self.pid(name)
        cmd = pid_cmdline(pid)
        if not pid_alive(pid):
            raise Fatal("%s (pid %d from %s.pid) is not running before the kill"
                        % (name, pid, name))
        if "nats-server" not in cmd and "leadscore" not in cmd:
            raise Fatal("%s.pid names pid %d, which runs %r: not killing it" % (name, pid, cmd))
        os.kill(pid, signal.SIGKILL)
        return pid

    def restart_later(self, name: str, delay: float) -> None:
        def go():
            t = time.monotonic()
            try:
                rc, out, err = self.sh(["start", name, "--dir", self.d], 60,
                                       "cluster.sh start " + name, check=False)
            except Fatal as e:
                rc, out, err = -1, "", str(e)
            self.restarts.append((name, rc, out, err, time.monotonic() - t))
            log("restarted %s (cluster.sh start: exit %d, %.1fs)" % (name, rc, time.monotonic() - t))
        tm = threading.Timer(delay, go)
        tm.daemon = True
        tm.start()
        self.timers.append(tm)

    def join_restarts(self, timeout: float = 70.0) -> None:
        deadline = time.monotonic() + timeout
        for tm in self.timers:
            tm.join(max(0.1, deadline - time.monotonic()))
            if tm.is_alive():
                raise Fatal("a cluster.sh start did not finish within %.0fs" % timeout)
        self.timers = []
        for name, rc, out, err, secs in self.restarts:
            if rc != 0:
                raise Fatal("cluster.sh start %s --dir D exited %d after %.1fs\nstdout: %s\nstderr: %s"
                            % (name, rc, secs, out[-2000:], err[-2000:]))
        self.restarts = []

    def settle(self, label: str, deadline: float = SETTLE_DEADLINE) -> dict:
        t = time.monotonic()
        last = None
        last_err = None
        while True:
            try:
                st = self.status()
                last = st
                parts = st["parts"]
                nodes = st.get("nodes") or {}
                live = all(isinstance(v, dict) and v.get("live") is True for v in nodes.values())
                if (st.get("ready") is True and live and len(parts) == PARTITIONS
                        and all(p.get("lag") == 0 for p in parts)):
                    leaders = collections.Counter(str(p.get("leader")) for p in parts)
                    log("%s: settled in %.1fs (last_seq %s; stream leaders %s)"
                        % (label, time.monotonic() - t,
                           ",".join(str(p.get("last_seq")) for p in parts),
                           " ".join("%s:%d" % kv for kv in sorted(leaders.items()))))
                    return st
            except Fatal as e:
                last_err = str(e)
            if time.monotonic() - t > deadline:
                raise Fatal("%s: the cluster did not settle within %.0fs (ready and every lag 0).\n"
                            "last status error: %s\nlast status: %s\nJetStream as each nats-server "
                            "sees it (/jsz):\n%s"
                            % (label, deadline, last_err, summarize_status(last), self.jsz())
                            + "\nnode counters (`stats`):\n" + self.node_stats())
            time.sleep(0.5)

    def node_stats(self) -> str:
        keys = ("commits", "events_accepted", "events_duplicate", "log_gaps_refused",
                "commit_failures", "events_unstored_failed", "customers", "uptime_s")
        ctx = zmq.Context.instance()
        lines = []
        for n in range(1, NODES + 1):
            node = "node%d" % n
            try:
                c = Conn(ctx, self.ep(node))
                try:
                    r = c.call({"op": "stats"}, 3.0)
                finally:
                    c.close()
                lines.append("  %s: %s" % (node, " ".join("%s=%s" % (k, r.get(k)) for k in keys)))
            except (Timeout, OSError) as e:
                lines.append("  %s: no stats (%s)" % (node, e))
        return "\n".join(lines)

    def jsz(self) -> str:
        """What each nats-server says about this cluster's streams and their
        consumers: for a report when the cluster does not settle."""
        import urllib.request
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        lines = []
        for i in range(1, 4):
            try:
                conf = read_file(os.path.join(self.d, "nats-%d.conf" % i))
                port = [ln.split(":")[-1].strip() for ln in conf.splitlines()
                        if ln.strip().startswith("http:")][0]
                url = ("http://127.0.0.1:%s/jsz?accounts=true&streams=true&consumers=true"
                       % port)
                doc = json.loads(opener.open(url, timeout=3).read().decode())
            except Exception as e:
                lines.append("  nats-%d: no /jsz (%s)" % (i, e))
                continue
            lines.append("  nats-%d: meta leader %s" % (i, (doc.get("meta_cluster") or {}).get("leader")))
            for acc in doc.get("account_details") or []:
                for sd in acc.get("stream_detail") or []:
                    if not str(sd.get("name", "")).startswith("LS_%s_" % self.name):
                        continue
                    cl = sd.get("cluster") or {}
                    st = sd.get("state") or {}
                    reps = " ".join("%s(current=%s,lag=%s)" % (r.get("name"), r.get("current"),
                                                                r.get("lag"))
                                    for r in cl.get("replicas") or [])
                    lines.append("    %s: first_seq %s last_seq %s msgs %s leader %s replicas %s"
                                 % (sd.get("name"), st.get("first_seq"), st.get("last_seq"),
                                    st.get("messages"), cl.get("leader"), reps))
                    for c in sd.get("consumer_detail") or []:
                        lines.append("      consumer %s: delivered stream_seq %s, num_pending %s, "
                                     "num_waiting %s, ack_pending %s, leader %s, created %s"
                                     % (c.get("name"), (c.get("delivered") or {}).get("stream_seq"),
                                        c.get("num_pending"), c.get("num_waiting"),
                                        c.get("num_ack_pending"),
                                        (c.get("cluster") or {}).get("leader"), c.get("created")))
        return "\n".join(lines)

    def down(self) -> None:
        try:
            self.sh(["down", "--dir", self.d], 60, "cluster.sh down", check=True)
        except Exception as e:
            log("cleanup: %s" % e)
        # anything cluster.sh started and still running: by its own PID only
        try:
            names = sorted(os.listdir(self.d))
        except OSError:
            names = []
        for fn in names:
            if not fn.endswith(".pid") or fn == "control.pid":
                continue
            try:
                pid = int(read_file(os.path.join(self.d, fn)))
            except (OSError, ValueError):
                continue
            cmd = pid_cmdline(pid)
            if pid_alive(pid) and ("nats-server" in cmd or "leadscore" in cmd):
                log("cleanup: %s (pid %d) still running after cluster.sh down: SIGKILL"
                    % (fn[:-4], pid))
                CHECKS.fail("cluster.sh down left %s (pid %d) running" % (fn[:-4], pid))
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


def summarize_status(st) -> str:
    if not isinstance(st, dict):
        return repr(st)
    lines = ["ready=%s epoch=%s partitions=%s" % (st.get("ready"), st.get("epoch"),
                                                  st.get("partitions"))]
    for n, v in sorted((st.get("nodes") or {}).items()):
        lines.append("  node %s: %s" % (n, json.dumps(v, sort_keys=True)))
    for p in st.get("parts") or []:
        lines.append("  p%s owner=%s standby=%s leader=%s last_seq=%s applied=%s lag=%s"
                     % (p.get("p"), p.get("owner"), p.get("standby"), p.get("leader"),
                        p.get("last_seq"), json.dumps(p.get("applied"), sort_keys=True),
                        p.get("lag")))
    return "\n".join(lines)


# -- workload ------------------------------------------------------------------------------


def load_events(path: str) -> list:
    evs = []
    with open(path, "r") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if line:
                e = json.loads(line)
                if not e.get("event_id"):
                    raise Fatal("%s line %d: event without event_id" % (path, n))
                evs.append(e)
    return evs


def expected_counts(events: list) -> dict:
    """What the features must add up to over all customers: each event id
    once; purchase_count counts orders (lines with one order_id are one)."""
    want = collections.Counter()
    orders = set()
    for e in events:
        t = e["type"]
        if t == "purchase":
            want["purchase_lines"] += 1
            oid = e.get("order_id")
            orders.add((e["customer"], oid) if oid else ("", e["event_id"]))
        else:
            want[t + "_count"] += 1
    want["purchase_count"] = len(orders)
    for t in EVENT_TYPES:
        want.setdefault(t + "_count", 0)
    return dict(want)


def count_sums(profiles: list) -> dict:
    sums = collections.Counter()
    for p in profiles:
        f = p.get("features") or {}
        for t in EVENT_TYPES:
            sums[t + "_count"] += f.get(t + "_count", 0.0)
        sums["purchase_lines"] += f.get("purchase_lines", 0.0)
    return {k: v for k, v in sums.items()}


def check_counts(label: str, sums: dict, want: dict) -> bool:
    bad = ["%s: %s, events sent %s" % (k, sums.get(k), want[k])
           for k in sorted(want) if sums.get(k, 0.0) != want[k]]
    if bad:
        CHECKS.fail("%s: per-type counts summed over customers differ from the acked events "
                    "(lost or doubled events): %s" % (label, "; ".join(bad)))
        return False
    log("%s: per-type counts over all customers equal the %d acked events"
        % (label, sum(v for k, v in want.items() if k != "purchase_count")))
    return True


class Stream:
    """Sends the batches in order to the control and to the target with
    retries; records what was acked."""

    def __init__(self, ctx, control_ep: str, target_ep: str, parts: int, cluster_mode: bool):
        self.control = Conn(ctx, control_ep)
        self.target = Conn(ctx, target_ep)
        self.parts = parts
        self.cluster_mode = cluster_mode
        self.acked_ids: set = set()
        self.attempts = 0
        self.retries = 0
        self.timeouts = 0
        self.errors = collections.Counter()
        self.slowest = (0.0, -1)
        self.max_seq: dict = {}      # partition -> highest seq a track reply named

    def send_control(self, batch: list, i: int) -> dict:
        req = {"op": "track", "events": batch}
        for a in range(3):
            try:
                r = self.control.call(req, 10.0)
            except Timeout:
                log("  control: batch %d timed out (attempt %d)" % (i, a + 1))
                continue
            if r.get("ok") is not True:
                raise Fatal("control refused batch %d: %r" % (i, r))
            if r.get("rejected"):
                raise Fatal("control rejected events of batch %d: %r" % (i, r["rejected"][:3]))
            return r
        raise Fatal("control: batch %d not acked in 3 attempts" % i)

    def send_target(self, batch: list, i: int, conn=None, deadline_s: float = BATCH_DEADLINE) -> dict:
        conn = conn or self.target
        req = {"op": "track", "events": batch}
        t = time.monotonic()
        deadline = t + deadline_s
        attempt = 0
        while True:
            attempt += 1
            self.attempts += 1
            if attempt > 1:
                self.retries += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise Fatal("batch %d (event ids %s..%s) not acked by %s within %.0fs "
                            "(%d attempts; errors so far %s)"
                            % (i, batch[0]["event_id"], batch[-1]["event_id"], conn.endpoint,
                               deadline_s, attempt - 1, dict(self.errors)))
            try:
                r = conn.call(req, min(ATTEMPT_TIMEOUT, left))
            except Timeout:
                self.timeouts += 1
                log("  batch %d: no ack within %.1fs (attempt %d): resending on a new socket"
                    % (i, min(ATTEMPT_TIMEOUT, left), attempt))
                continue
            if r.get("ok") is True:
                took = time.monotonic() - t
                if took > self.slowest[0]:
                    self.slowest = (took, i)
                if attempt > 1:
                    log("  batch %d: acked after %d attempts, %.1fs" % (i, attempt, took))
                self.check_reply(r, batch, i)
                return r
            err = r.get("error") or {}
            code = err.get("code")
            self.errors[code] += 1
            if code in ("unavailable", "internal"):
                log("  batch %d: %s %r (attempt %d): retrying with the same event ids"
                    % (i, code, err.get("message"), attempt))
                time.sleep(0.2)
                continue
            raise Fatal("batch %d: %s answered %r" % (i, conn.endpoint, r))

    def check_reply(self, r: dict, batch: list, i: int) -> None:
        rej = r.get("rejected")
        CHECKS.check(rej == [], "batch %d: track reply rejected events: %r" % (i, rej))
        acc, dup = r.get("accepted"), r.get("duplicates")
        if not (isinstance(acc, int) and isinstance(dup, int) and acc + dup == len(batch)):
            CHECKS.fail("batch %d: accepted %r + duplicates %r != %d events"
                        % (i, acc, dup, len(batch)))
        if not self.cluster_mode:
            return
        lg = r.get("log")
        if not isinstance(lg, dict):
            CHECKS.fail("batch %d: cluster track reply has no `log` map: %r" % (i, r))
            return
        want = {partition_of(e["customer"], self.parts) for e in batch}
        got = set()
        for k, seq in lg.items():
            if not isinstance(k, str):
                CHECKS.fail("batch %d: `log` key %r is not a string (contract: {\"<p>\": seq})" % (i, k))
            try:
                p = int(k)
            except (TypeError, ValueError):
                CHECKS.fail("batch %d: `log` key %r is not a partition number" % (i, k))
                continue
            got.add(p)
            if not isinstance(seq, int) or seq < 1:
                CHECKS.fail("batch %d: `log` seq for partition %d is %r" % (i, p, seq))
                continue
            prev = self.max_seq.get(p, 0)
            if seq <= prev:
                CHECKS.fail("batch %d: partition %d written at seq %d, not after the %d of an "
                            "earlier acked batch" % (i, p, seq, prev))
            self.max_seq[p] = max(prev, seq)
        # a node may leave out partitions whose events it had all applied
        # already (duplicates > 0), never name one the batch does not touch
        if got != want and (dup == 0 or not got <= want):
            CHECKS.fail("batch %d: `log` names partitions %s, the contract's hash of the batch's "
                        "customers gives %s (duplicates %r; partition function mismatch?)"
                        % (i, sorted(got), sorted(want), dup))

    def close(self) -> None:
        self.control.close()
        self.target.close()


# -- reading everything back -------------------------------------------------------------


def read_all(conn: Conn, ids: list, now: int, what: str):
    """(profiles, single scores, batched scores with explain) for every id."""
    t = time.monotonic()
    prof = conn.reads([{"op": "profile", "customer": c, "now": now} for c in ids],
                      what + " profile")
    sc = conn.reads([{"op": "score", "customer": c, "now": now} for c in ids],
                    what + " score")
    batched = []
    reqs = [{"op": "score", "customers": ids[s:s + 1000], "now": now, "explain": True}
            for s in range(0, len(ids), 1000)]
    for req, rep in zip(reqs, conn.reads(reqs, what + " batched score")):
        res = rep.get("results")
        if not isinstance(res, list) or len(res) != len(req["customers"]):
            raise Fatal("%s: batched score reply has %s results for %d ids"
                        % (what, len(res) if isinstance(res, list) else "no",
                           len(req["customers"])))
        for c, x in zip(req["customers"], res):
            if x.get("customer") != c:
                raise Fatal("%s: batched score results out of order: %r where %r was asked"
                            % (what, x.get("customer"), c))
        batched.extend(res)
    log("%s: read %d profiles, %d scores, %d batched scores in %.1fs"
        % (what, len(prof), len(sc), len(batched), time.monotonic() - t))
    return prof, sc, batched


def compare_all(label: str, ids: list, want, got, want_name: str, got_name: str,
                refetch=None) -> bool:
    """Compare the three read sets; on a difference, read the differing ids
    once more after 3 s to tell a stale read from a wrong one."""
    ok = True
    for kind, w, g in zip(("profile", "score", "batched score"), want, got):
        bad = compare_sets("%s %s" % (label, kind), ids, w, g, want_name, got_name)
        if not bad:
            continue
        ok = False
        note = ""
        if refetch is not None:
            time.sleep(3)
            idx = [ids.index(c) for c in bad[:200]]
            again = refetch(kind, [ids[i] for i in idx])
            still = sum(1 for i, a in zip(idx, again) if _differs(w[i], a))
            note = ("; read again 3 s later, %d of %d checked still differ%s"
                    % (still, len(idx), "" if still else " (a stale read: the state was reported "
                       "settled before this node had applied everything)"))
        CHECKS.fail("%s: %s differs for %d of %d customers between %s and %s (first: %s)%s"
                    % (label, kind, len(bad), len(ids), want_name, got_name, bad[:5], note))
    if ok:
        log("%s: %s equals %s for all %d customers (profile, score, batched score with explain)"
            % (label, got_name, want_name, len(ids)))
    return ok


def _differs(a, b) -> bool:
    d: list = []
    diff(a, b, "", d, 1)
    return bool(d)


def refetcher(conn: Conn, now: int, what: str):
    def go(kind: str, ids: list) -> list:
        if kind == "profile":
            return conn.reads([{"op": "profile", "customer": c, "now": now} for c in ids], what)
        if kind == "score":
            return conn.reads([{"op": "score", "customer": c, "now": now} for c in ids], what)
        r = conn.reads([{"op": "score", "customers": ids, "now": now, "explain": True}], what)
        return r[0].get("results") or []
    return go


# -- main ---------------------------------------------------------------------------------


def preflight(binary: str, self_check: bool) -> None:
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise Fatal("--leadscore %s: not an executable file" % binary)
    if self_check:
        return
    if shutil.which("nats-server") is None:
        print("cluster_test: SKIP: nats-server is not installed (scripts/test.sh installs it; "
              "or apt-get install nats-server)", flush=True)
        sys.exit(SKIP)
    rc, out, err = run([binary, "cluster", "--help"], 20, "leadscore cluster --help", check=False)
    text = out + err
    # a build without libnats says so (its `cluster --help` exits 0 or 1)
    if "without NATS" in text:
        why = [ln for ln in text.splitlines() if "without NATS" in ln][0].strip()
        print("cluster_test: SKIP: %s: %s" % (binary, why), flush=True)
        sys.exit(SKIP)
    if rc != 0:
        raise Fatal("`%s cluster --help` exited %d without saying the binary lacks NATS:\n%s"
                    % (binary, rc, text.strip()[-1500:]))
    if not os.path.isfile(CLUSTER_SH):
        raise Fatal("%s is missing" % CLUSTER_SH)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leadscore", required=True, help="the built leadscore binary")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--time-limit", type=float, default=170.0,
                    help="seconds for the whole run (default 170)")
    ap.add_argument("--restart-after", type=float, default=3.0,
                    help="seconds from a kill -9 to its restart (default 3)")
    ap.add_argument("--faults", default="nats,node2",
                    help="faults while streaming, comma-separated: nats (the busiest stream "
                    "leader), node2; \"none\" for neither (default nats,node2)")
    ap.add_argument("--self-check", action="store_true",
                    help="test this script: a second single node stands in for the cluster")
    args = ap.parse_args()
    binary = os.path.abspath(args.leadscore)
    globals()["RESTART_AFTER"] = args.restart_after
    faults = set(f for f in args.faults.split(",") if f and f != "none")
    if not faults <= {"nats", "node2"}:
        ap.error("--faults takes nats, node2 or none")

    try:
        preflight(binary, args.self_check)
    except Fatal as e:
        print("cluster_test: FAILED before starting anything: %s" % e, flush=True)
        return 1

    def on_signal(signum, frame):
        raise TimeLimit("signal %d" % signum if signum != signal.SIGALRM else
                        "the run exceeded its time limit of %.0fs" % args.time_limit)
    signal.signal(signal.SIGALRM, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.setitimer(signal.ITIMER_REAL, args.time_limit)

    d = tempfile.mkdtemp(prefix="leadscore-cluster-")
    name = "ct%d%s" % (os.getpid() % 100000, "".join(random.choice("abcdefghjkmnpqrstuvwxyz")
                                                       for _ in range(6)))
    ctx = zmq.Context()
    cluster = None
    control = None
    target_single = None
    conns: list = []
    log("cluster_test: dir %s, cluster name %s, binary %s%s"
        % (d, name, binary, " (self-check: no cluster)" if args.self_check else ""))
    try:
        # 1. processes
        if args.self_check:
            target_single = Single(binary, os.path.join(d, "target"), "target")
            target_single.start(ctx)
            log("self-check target (single node) on %s" % target_single.endpoint)
        else:
            cluster = Cluster(binary, d, name)
            cluster.up()
            st = cluster.settle("after cluster.sh up", 60)
            check_initial_map(st)
        control = Single(binary, os.path.join(d, "control"), "control")
        control.start(ctx)
        log("control (single node) on %s" % control.endpoint)

        # 2. workload
        evpath = os.path.join(d, "events.jsonl")
        run([binary, "gen"] + GEN_ARGS + ["--format", "jsonl", "--out", evpath], 60, "leadscore gen")
        events = load_events(evpath)
        batches = [events[i:i + BATCH] for i in range(0, len(events), BATCH)]
        ids = sorted({e["customer"] for e in events})
        # a whole second (rescore takes seconds), a day after the last event
        now = (max(e["ts"] for e in events) + DAY_MS + 999) // 1000 * 1000
        want = expected_counts(events)
        log("workload: %d events, %d customers, %d batches of %d; now=%d"
            % (len(events), len(ids), len(batches), BATCH, now))

        node_eps = {}
        if cluster:
            for n in range(1, NODES + 1):
                node_eps["node%d" % n] = cluster.ep("node%d" % n)
            target_ep = node_eps["node1"]
            check_cluster_op(ctx, node_eps, control.endpoint, cluster.status())
        else:
            target_ep = target_single.endpoint
        check_same_model(ctx, control.endpoint, target_ep)

        # 3. stream with faults
        stream = Stream(ctx, control.endpoint, target_ep, PARTITIONS, cluster is not None)
        conns += [stream.control, stream.target]
        at30 = int(len(batches) * 0.3)
        at50 = int(len(batches) * 0.5)
        t = time.monotonic()
        for i, b in enumerate(batches):
            if i == at30 and cluster and "nats" in faults:
                fault_nats_leader(cluster)
            if i == at50 and "node2" in faults:
                if cluster:
                    pid = cluster.kill9("node2")
                    log("FAULT at batch %d: kill -9 node2 (pid %d); restart in %.0fs"
                        % (i, pid, RESTART_AFTER))
                    cluster.restart_later("node2", RESTART_AFTER)
                else:
                    target_single.kill9()
                    log("FAULT at batch %d: kill -9 the self-check target; restart in %.0fs"
                        % (i, RESTART_AFTER))
                    tm = threading.Timer(RESTART_AFTER, lambda: target_single.start(ctx))
                    tm.daemon = True
                    tm.start()
            stream.send_control(b, i)
            stream.send_target(b, i)
            stream.acked_ids.update(e["event_id"] for e in b)
            if (i + 1) % 25 == 0 or i + 1 == len(batches):
                log("streamed %d/%d batches: %d attempts, %d retries, %d timeouts, errors %s, "
                    "slowest batch %.2fs (#%d)"
                    % (i + 1, len(batches), stream.attempts, stream.retries, stream.timeouts,
                       dict(stream.errors), stream.slowest[0], stream.slowest[1]))
        log("streaming done in %.1fs: %d event ids acked by both"
            % (time.monotonic() - t, len(stream.acked_ids)))
        if len(stream.acked_ids) != len(events):
            raise Fatal("only %d of %d event ids acked" % (len(stream.acked_ids), len(events)))

        # 4. settle
        if cluster:
            cluster.join_restarts()
            for n in node_eps:     # a restarted node may listen on a new port
                node_eps[n] = wait_ping(ctx, lambda: cluster.ep(n), 30, n)
            st = cluster.settle("after streaming")
            check_log_vs_status(stream, st)
            check_cluster_op(ctx, node_eps, control.endpoint, st)
        else:
            time.sleep(0.5)

        # 5. compare
        cctl = Conn(ctx, control.endpoint)
        conns.append(cctl)
        n1 = Conn(ctx, target_ep)
        conns.append(n1)
        ctl_reads = read_all(cctl, ids, now, "control")
        check_counts("control", count_sums(ctl_reads[0]), want)
        tgt_name = "node1" if cluster else "target"
        t_reads = read_all(n1, ids, now, tgt_name)
        check_counts(tgt_name, count_sums(t_reads[0]), want)
        compare_all("after streaming", ids, ctl_reads, t_reads, "control", tgt_name,
                    refetcher(n1, now, tgt_name + " again"))
        if not cluster:
            compare_stores("after streaming", binary, d, now, ["target"])

        if cluster:
            n2 = Conn(ctx, node_eps["node2"])
            conns.append(n2)
            n2_reads = read_all(n2, ids, now, "node2")
            compare_all("either node", ids, t_reads, n2_reads, "node1", "node2",
                        refetcher(n2, now, "node2 again"))
            compare_stores("after streaming", binary, d, now, ["node1", "node2"])

        # retry of an acked batch, to the other node: nothing may change
        again_ep = node_eps["node2"] if cluster else target_ep
        k = len(batches) // 3
        again = Conn(ctx, again_ep)
        conns.append(again)
        r = stream.send_target(batches[k], k, conn=again)
        log("resent acked batch %d to %s: accepted %s, duplicates %s"
            % (k, "node2" if cluster else "target", r.get("accepted"), r.get("duplicates")))
        rc = stream.send_control(batches[k], k)
        CHECKS.check(rc.get("duplicates") == len(batches[k]),
                     "control: resent batch %d gave duplicates %r, not %d"
                     % (k, rc.get("duplicates"), len(batches[k])))
        if cluster:
            st = cluster.settle("after the resend")
            check_log_vs_status(stream, st)
        else:
            time.sleep(0.5)
        t_again = read_all(n1, ids, now, tgt_name + " after the resend")
        check_counts(tgt_name + " after the resend", count_sums(t_again[0]), want)
        compare_all("after the resend", ids, ctl_reads, t_again, "control", tgt_name,
                    refetcher(n1, now, tgt_name + " again"))

        # cluster move: partition 0 from node1 to its standby node2; the map's
        # epoch rises, every node and the `cluster` op follow, answers stay
        # the control's (node2 answers partition 0 now, forwarded from node1)
        if cluster:
            t = time.monotonic()
            run([binary, "cluster", "move", "--nats", cluster.urls, "--cluster", cluster.name, "0", "node2"], 30,
                "cluster move 0 node2")
            st = cluster.settle("after cluster move 0 node2")
            p0 = [p for p in st["parts"] if p["p"] == 0][0]
            CHECKS.check(p0.get("owner") == "node2" and p0.get("standby") == "node1" and st.get("epoch", 0) >= 2,
                         "after cluster move 0 node2: partition 0 is %r, epoch %r" % (p0, st.get("epoch")))
            check_cluster_op(ctx, node_eps, control.endpoint, st)
            m_reads = read_all(n1, ids, now, "node1 after the move")
            compare_all("after the move", ids, ctl_reads, m_reads, "control", "node1 after the move",
                        refetcher(n1, now, "node1 after the move again"))
            log("cluster move checked in %.1fs" % (time.monotonic() - t))

        # forget: every 50th customer, asked of node2 (which forwards the
        # partitions it does not answer), and of the control; the cluster and
        # the control then agree on everyone, and `deleted` matches
        if cluster:
            gone = ids[::50]
            fc = Conn(ctx, node_eps["node2"])
            conns.append(fc)
            for c in gone:
                r = fc.call({"op": "forget", "customer": c}, 20.0)
                rc = stream.control.call({"op": "forget", "customer": c}, 10.0)
                CHECKS.check(r.get("ok") is True and r.get("deleted") == rc.get("deleted") is True,
                             "forget %r: cluster %r, control %r" % (c, r, rc))
            st = cluster.settle("after forgetting %d customers" % len(gone))
            ctl_reads = read_all(cctl, ids, now, "control after the forgets")
            want = count_sums(ctl_reads[0])
            f_reads = read_all(n1, ids, now, "node1 after the forgets")
            check_counts("node1 after the forgets", count_sums(f_reads[0]), want)
            compare_all("after the forgets", ids, ctl_reads, f_reads, "control", "node1 after the forgets",
                        refetcher(n1, now, "node1 after the forgets again"))
            unknown = sum(1 for c, p in zip(ids, f_reads[0]) if c in set(gone) and p.get("known") is False)
            CHECKS.check(unknown == len(gone), "after the forgets: %d of %d forgotten customers unknown on node1"
                         % (unknown, len(gone)))
            log("forgot %d customers through node2: unknown everywhere, the rest unchanged" % len(gone))

        # rebuild node1 from the log (it replays the forgets too)
        if cluster:
            t = time.monotonic()
            n1.close()
            cluster.sh(["stop", "node1", "--dir", d], 60, "cluster.sh stop node1")
            shutil.rmtree(os.path.join(d, "node1"))
            log("node1 stopped and its data deleted")
            cluster.sh(["start", "node1", "--dir", d], 60, "cluster.sh start node1")
            node_eps["node1"] = wait_ping(ctx, lambda: cluster.ep("node1"), 30, "rebuilt node1")
            st = cluster.settle("after the rebuild of node1")
            check_cluster_op(ctx, node_eps, control.endpoint, st)
            log("node1 rebuilt in %.1fs" % (time.monotonic() - t))
            n1 = Conn(ctx, node_eps["node1"])
            conns.append(n1)
            r_reads = read_all(n1, ids, now, "rebuilt node1")
            check_counts("rebuilt node1", count_sums(r_reads[0]), want)
            compare_all("after the rebuild", ids, ctl_reads, r_reads, "control", "rebuilt node1",
                        refetcher(n1, now, "rebuilt node1 again"))
            compare_stores("after the rebuild", binary, d, now, ["node1", "node2"])
            n2_after = read_all(n2, ids[::7], now, "node2 after the rebuild")
            compare_all("node2 after the rebuild", ids[::7],
                        tuple(x[::7] for x in ctl_reads), n2_after, "control", "node2")

    except Fatal as e:
        CHECKS.fail(str(e))
    except TimeLimit as e:
        CHECKS.fail("stopped: %s" % e)
    except Exception:
        CHECKS.fail("unexpected error in the test script:\n" + traceback.format_exc())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for c in conns:
            c.close()
        if CHECKS.failures:
            show_logs(d)
        log("cleanup")
        if cluster is not None:
            cluster.down()
        for s in (control, target_single):
            if s is not None:
                s.stop()
        ctx.destroy(0)
        check_sanitizer_reports(d)
        if args.keep or (CHECKS.failures and os.environ.get("LEADSCORE_KEEP_FAILED")):
            log("kept %s" % d)
        else:
            shutil.rmtree(d, ignore_errors=True)
    if CHECKS.failures:
        print("\ncluster_test: FAILED (%d problem%s):" % (len(CHECKS.failures),
              "" if len(CHECKS.failures) == 1 else "s"), flush=True)
        for f in CHECKS.failures:
            print("  * " + f.replace("\n", "\n    "), flush=True)
        return 1
    log("cluster_test: PASS")
    return 0


def compare_stores(label: str, binary: str, d: str, now: int, nodes: list) -> None:
    """`leadscore rescore` of each node's own store (opened read-only while
    it runs) must equal the control's byte for byte: with 2 nodes each holds
    every partition (as owner or standby), and a read through a node may be
    answered by the other one, so this is what shows that each store itself
    is complete and right."""
    t = time.monotonic()
    outs = {}
    for name in ["control"] + nodes:
        rc, out, err = run([binary, "rescore", "--data", os.path.join(d, name), "--now", str(now // 1000),
                            "--format", "jsonl", "--threads", "1", "--quiet"], 60,
                           "rescore of %s's store" % name, check=False, cwd=d)
        if rc != 0:
            CHECKS.fail("%s: `leadscore rescore --data D/%s` exited %d: %s"
                        % (label, name, rc, (err or out).strip()[-500:]))
            return
        outs[name] = out.splitlines()
    want = outs["control"]
    ok = True
    for name in nodes:
        got = outs[name]
        if got == want:
            continue
        ok = False
        wid = {json.loads(x).get("customer"): x for x in want}
        gid = {json.loads(x).get("customer"): x for x in got}
        missing = sorted(set(wid) - set(gid))
        extra = sorted(set(gid) - set(wid))
        differ = sorted(c for c in set(wid) & set(gid) if wid[c] != gid[c])
        detail = []
        for c in differ[:3]:
            dd: list = []
            diff(json.loads(wid[c]), json.loads(gid[c]), "", dd)
            detail.append("%r: %s" % (c, "; ".join(dd[:4])))
        CHECKS.fail("%s: rescore of %s's store differs from the control's: %d rows vs %d; "
                    "missing %d %s, extra %d %s, different %d %s"
                    % (label, name, len(got), len(want), len(missing), missing[:3], len(extra),
                       extra[:3], len(differ), " | ".join(detail)))
    if ok:
        log("%s: rescore of the stores of %s equals the control's byte for byte "
            "(%d customers, %.1fs)" % (label, ", ".join(nodes), len(want), time.monotonic() - t))


def wait_ping(ctx, get_ep, timeout: float, what: str) -> str:
    """Ping the endpoint get_ep() (read again each try: a restarted node may
    have a new port) until it answers; returns it."""
    deadline = time.monotonic() + timeout
    ep = None
    while True:
        try:
            ep = get_ep()
        except OSError:
            ep = None
        if ep:
            c = Conn(ctx, ep)
            try:
                if c.call({"op": "ping"}, 1.0).get("ok"):
                    return ep
            except Timeout:
                pass
            finally:
                c.close()
        if time.monotonic() > deadline:
            raise Fatal("%s: no answer to ping on %s within %.0fs" % (what, ep, timeout))
        time.sleep(0.1)


def check_initial_map(st: dict) -> None:
    CHECKS.check(st.get("partitions") == PARTITIONS,
                 "cluster status: partitions %r, expected %d" % (st.get("partitions"), PARTITIONS))
    parts = sorted(st["parts"], key=lambda p: p.get("p", -1))
    CHECKS.check([p.get("p") for p in parts] == list(range(PARTITIONS)),
                 "cluster status: parts are %r, expected 0..%d"
                 % ([p.get("p") for p in parts], PARTITIONS - 1))
    nodes = ["node%d" % n for n in range(1, NODES + 1)]
    for p in parts:
        i = p.get("p", 0)
        CHECKS.check(p.get("owner") == nodes[i % NODES] and p.get("standby") == nodes[(i + 1) % NODES],
                     "cluster status: partition %s owner/standby %r/%r, the contract says %s/%s"
                     % (i, p.get("owner"), p.get("standby"), nodes[i % NODES],
                        nodes[(i + 1) % NODES]))


CLUSTER_OP_GRACE = 3.0   # seconds a node may take to see a (re)started peer's endpoint


def cluster_op_problems(ctx, node: str, ep: str, owners_ep: list) -> list:
    c = Conn(ctx, ep)
    try:
        r = c.call({"op": "cluster"}, 5.0)
    except Timeout:
        return ["no answer from %s (%s)" % (node, ep)]
    finally:
        c.close()
    problems = []
    for k, v in (("ok", True), ("mode", "cluster"), ("node", node),
                 ("partitions", PARTITIONS), ("hash", "fnv1a64-fmix64")):
        if r.get(k) != v:
            problems.append("%s=%r (expected %r)" % (k, r.get(k), v))
    if r.get("owners") != owners_ep:
        problems.append("owners=%r (expected the owners' endpoints %r)"
                        % (r.get("owners"), owners_ep))
    if not (isinstance(r.get("standbys"), list) and len(r["standbys"]) == PARTITIONS):
        problems.append("standbys=%r" % (r.get("standbys"),))
    return problems


def check_cluster_op(ctx, node_eps: dict, control_ep: str, st: dict) -> None:
    """The `cluster` op on the control (mode single) and on each node: the
    owners' endpoints as `cluster status` shows them.  A node refreshes its
    view of the others about once a second, so it gets CLUSTER_OP_GRACE
    seconds to agree; a delay is reported as a note."""
    c = Conn(ctx, control_ep)
    try:
        r = c.call({"op": "cluster"}, 5.0)
    except Timeout:
        r = {"timeout": True}
    finally:
        c.close()
    CHECKS.check(r.get("ok") is True and r.get("mode") == "single",
                 "`cluster` op on the single-node control: %r, expected {ok:true, mode:\"single\"}" % r)
    owners_ep = [node_eps.get(p.get("owner"), "?") for p in sorted(st["parts"], key=lambda p: p["p"])]
    for node, ep in sorted(node_eps.items()):
        t = time.monotonic()
        first = None
        while True:
            problems = cluster_op_problems(ctx, node, ep, owners_ep)
            if not problems or time.monotonic() - t > CLUSTER_OP_GRACE:
                break
            first = first or problems
            time.sleep(0.1)
        if problems:
            CHECKS.fail("`cluster` op on %s, still after %.0fs: %s"
                        % (node, CLUSTER_OP_GRACE, "; ".join(problems)))
        elif first:
            log("  note: `cluster` op on %s agreed with `cluster status` only after %.1fs; before: %s"
                % (node, time.monotonic() - t, "; ".join(first)))
    log("`cluster` op checked on the control and %d nodes" % len(node_eps))


def check_same_model(ctx, a: str, b: str) -> None:
    ra, rb = Conn(ctx, a), Conn(ctx, b)
    try:
        ma = ra.reads([{"op": "model"}], "model (control)")[0]
        mb = rb.reads([{"op": "model"}], "model (target)")[0]
    finally:
        ra.close()
        rb.close()
    d: list = []
    diff(ma, mb, "model", d)
    if d:
        raise Fatal("the control and the cluster serve different models, so scores cannot be "
                    "compared: %s" % "; ".join(d[:5]))
    log("both serve model %s@%s" % (ma.get("name"), ma.get("version")))


def fault_nats_leader(cluster: Cluster) -> None:
    st = None
    for _ in range(3):
        try:
            st = cluster.status()
            break
        except Fatal as e:
            log("  status before the NATS kill: %s" % e)
            time.sleep(0.5)
    if st is None:
        raise Fatal("cluster status failed 3 times before the NATS fault")
    leaders = collections.Counter(p.get("leader") for p in st["parts"] if p.get("leader"))
    if not leaders:
        raise Fatal("cluster status names no stream leader: %s" % summarize_status(st))
    victim, n = max(sorted(leaders.items()), key=lambda kv: kv[1])
    pid = cluster.kill9(victim)
    log("FAULT: kill -9 %s (pid %d), leader of %d of %d partitions (leaders %s); restart in %.0fs"
        % (victim, pid, n, PARTITIONS, dict(leaders), RESTART_AFTER))
    cluster.restart_later(victim, RESTART_AFTER)


def check_log_vs_status(stream: Stream, st: dict) -> None:
    for p in st["parts"]:
        i = p.get("p")
        acked = stream.max_seq.get(i, 0)
        last = p.get("last_seq")
        CHECKS.check(isinstance(last, int) and last >= acked,
                     "partition %s: status last_seq %r is below seq %d of an acked track"
                     % (i, last, acked))


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")


def check_sanitizer_reports(d: str) -> None:
    """A sanitizer build reports into the processes' logs (a UBSan report
    does not stop the process): any report fails the test."""
    try:
        names = sorted(fn for fn in os.listdir(d) if fn.endswith(".log"))
    except OSError:
        return
    for fn in names:
        try:
            with open(os.path.join(d, fn), "r", errors="replace") as f:
                lines = f.readlines()
        except OSError:
            continue
        hits = [i for i, ln in enumerate(lines) if any(m in ln for m in SANITIZER_MARKS)]
        if hits:
            i = hits[0]
            CHECKS.fail("%s has %d sanitizer report line%s; the first:\n%s"
                        % (fn, len(hits), "" if len(hits) == 1 else "s",
                           "".join(lines[i:i + 25]).rstrip()))


def show_logs(d: str) -> None:
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return
    for fn in names:
        if fn.endswith(".log"):
            log("--- tail of %s ---\n%s" % (fn, tail(os.path.join(d, fn), 40)))


if __name__ == "__main__":
    sys.exit(main())
