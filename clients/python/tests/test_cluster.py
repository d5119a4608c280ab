#!/usr/bin/python3
"""Cluster mode in the clients.

* partition_of / partition_hash against the table the C implementation
  (src/partition.c) printed, and against a second, independent
  implementation here;
* routing against fake nodes (Python ROUTER sockets, no server, no NATS):
  one endpoint sends no `cluster` op; reads go to the owner, batches are
  split and merged in order, `track` replies merged, a stale map is
  refreshed once, a silent owner fails over to the standby;
* a real 3-node cluster (scripts/cluster.sh: three nats-servers and three
  `leadscore serve --nats` nodes) against a single-node control server fed
  the same events: every score, profile and recommend equal.  Skipped when
  nats-server is not installed or $LEADSCORE_BIN has no cluster mode.
"""

import asyncio
import json
import math
import os
import queue
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid
from collections import Counter, defaultdict

import msgpack
import zmq

from support import BIN, REPO, uid, wait_until

import leadscore
from leadscore import (AsyncClient, Client, ClusterMap, Internal, Unavailable,
                       partition_hash, partition_of)

# ---------------------------------------------------------------------------
# The published table: printed by a throwaway C program that #includes
# src/partition.c and calls partition_hash / partition_of (P = 8, 128).
#   id, partition_hash(id), partition_of(id, 8), partition_of(id, 128)
PUBLISHED = [
    ("", 17280346270528514342, 6, 38),
    ("a", 9413272369427828315, 3, 91),
    ("alice", 3821251815001557236, 4, 116),
    ("customer-000001", 16645113076713583590, 6, 102),
    ("\u00fcn\u00ef", 13638732505023422947, 3, 99),          # "ünï", UTF-8
]


def reference_partition(customer_id, partitions):
    """A second implementation, written from the contract's text only."""
    data = customer_id.encode("utf-8")
    h = 0xcbf29ce484222325                       # 14695981039346656037
    for byte in data:
        h = h ^ byte
        h = (h * 0x100000001b3) % (2 ** 64)      # 1099511628211
    k = h
    k = k ^ (k >> 33)
    k = (k * 0xff51afd7ed558ccd) % (2 ** 64)
    k = k ^ (k >> 33)
    k = (k * 0xc4ceb9fe1a85ec53) % (2 ** 64)
    k = k ^ (k >> 33)
    return k, k % partitions


class TestPartition(unittest.TestCase):

    def test_published_table(self):
        for cid, h, p8, p128 in PUBLISHED:
            self.assertEqual(partition_hash(cid), h, repr(cid))
            self.assertEqual(partition_of(cid, 8), p8, repr(cid))
            self.assertEqual(partition_of(cid, 128), p128, repr(cid))
            self.assertEqual(reference_partition(cid, 8), (h, p8), repr(cid))
            self.assertEqual(reference_partition(cid, 128), (h, p128), repr(cid))

    def test_against_reference(self):
        rnd = random.Random(7)
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_@.\u00e9\u00fc\u4e2d\U0001f600"
        for n in range(2000):
            cid = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40)))
            parts = rnd.choice([1, 2, 3, 7, 8, 64, 128, 1000, 1024])
            h, p = reference_partition(cid, parts)
            self.assertEqual(partition_hash(cid), h, repr(cid))
            self.assertEqual(partition_of(cid, parts), p, (cid, parts))

    def test_spread(self):
        counts = Counter(partition_of("customer-%06d" % i, 8) for i in range(8000))
        self.assertEqual(set(counts), set(range(8)))
        self.assertLess(max(counts.values()) - min(counts.values()), 250, counts)

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            partition_of("a", 0)
        with self.assertRaises(ValueError):
            partition_of("a", -3)
        with self.assertRaises(TypeError):
            partition_of(b"a", 8)
        self.assertIs(leadscore.partition_of, partition_of)
        self.assertEqual(leadscore.HASH_NAME, "fnv1a64-fmix64")


class TestEndpoints(unittest.TestCase):

    def test_parse(self):
        from leadscore.cluster import parse_endpoints
        self.assertEqual(parse_endpoints("tcp://a:1"), ["tcp://a:1"])
        self.assertEqual(parse_endpoints(" tcp://a:1 , tcp://b:2,,tcp://a:1"),
                         ["tcp://a:1", "tcp://b:2"])
        self.assertEqual(parse_endpoints(("tcp://a:1", "tcp://b:2")), ["tcp://a:1", "tcp://b:2"])
        for bad in ("", " , ", []):
            with self.assertRaises(ValueError):
                parse_endpoints(bad)
        with self.assertRaises(TypeError):
            parse_endpoints([1])

    def test_modes(self):
        with Client("tcp://127.0.0.1:9") as ls:
            self.assertFalse(ls._routing)
            self.assertEqual(ls.endpoint, "tcp://127.0.0.1:9")
        with Client(["tcp://127.0.0.1:9"]) as ls:
            self.assertFalse(ls._routing)
            self.assertEqual(ls.endpoint, "tcp://127.0.0.1:9")
        with Client("tcp://127.0.0.1:9,tcp://127.0.0.1:10") as ls:
            self.assertTrue(ls._routing)
            self.assertEqual(ls.endpoint, "tcp://127.0.0.1:9")
            self.assertEqual(ls.endpoints, ["tcp://127.0.0.1:9", "tcp://127.0.0.1:10"])
            self.assertIn("cluster=True", repr(ls))
        with Client("tcp://127.0.0.1:9", cluster=True) as ls:
            self.assertTrue(ls._routing)
        with self.assertRaises(ValueError):
            Client(["tcp://127.0.0.1:9", "tcp://127.0.0.1:10"], failover=0)


# ---------------------------------------------------------------------------
# Fake nodes


class FakeNode:
    """A ROUTER socket on an ephemeral loopback port answering with
    ``handler(node, request)`` in a thread (None: no answer at all)."""

    def __init__(self, handler):
        self.handler = handler
        self.requests = []
        self._lock = threading.Lock()
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = "tcp://127.0.0.1:%d" % port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            if not self.sock.poll(20):
                continue
            frames = self.sock.recv_multipart()
            req = msgpack.unpackb(frames[-1], raw=False)
            with self._lock:
                self.requests.append(req)
            reply = self.handler(self, req)
            if reply is None:
                continue
            reply = dict(reply)
            reply["id"] = req.get("id")
            self.sock.send_multipart(frames[:-1] + [msgpack.packb(reply, use_bin_type=True)])

    def ops(self):
        with self._lock:
            return [r.get("op") for r in self.requests]

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close(0)


def error(code, message):
    return {"ok": False, "error": {"code": code, "message": message}}


def single_handler(node, req):
    """A single node: every read answers, `cluster` says single."""
    op = req.get("op")
    if op == "cluster":
        return {"ok": True, "mode": "single"}
    if op == "score" and "customers" in req:
        return {"ok": True, "results": [{"customer": c} for c in req["customers"]]}
    if op in ("score", "profile", "recommend"):
        return {"ok": True, "customer": req.get("customer")}
    if op == "track":
        return {"ok": True, "accepted": len(req["events"]), "duplicates": 0, "rejected": []}
    if op == "ping":
        return {"ok": True, "pong": True}
    return error("unknown_op", "unknown op")


class FakeCluster:
    """N fake nodes sharing one map of P partitions (owner p % N, standby
    (p + 1) % N), answering reads only for partitions they hold."""

    def __init__(self, n=3, partitions=8):
        self.n, self.partitions = n, partitions
        self.epoch = 1
        self.shift = 0
        self.silent = set()          # nodes that never answer
        self.refuse_all = False      # every read refused, whatever the map
        self.fail_track = None       # node whose track fails
        self.seq = defaultdict(int)
        self.unknown = {}            # node -> nodes whose endpoint it answers as ""
        self._lock = threading.Lock()
        self.nodes = [FakeNode(self.handle) for _ in range(n)]
        self.eps = [nd.endpoint for nd in self.nodes]

    def owner(self, p):
        return (p + self.shift) % self.n

    def standby(self, p):
        return (p + self.shift + 1) % self.n

    def move_all(self):
        """Every partition to the next node: epoch + 1."""
        with self._lock:
            self.shift += 1
            self.epoch += 1

    def close(self):
        for nd in self.nodes:
            nd.close()

    def cluster_ops(self):
        return sum(nd.ops().count("cluster") for nd in self.nodes)

    def handle(self, node, req):
        k = self.nodes.index(node)
        if k in self.silent:
            return None
        op = req.get("op")
        with self._lock:
            if op == "cluster":
                unknown = self.unknown.get(k, ())
                eps = ["" if j in unknown else ep for j, ep in enumerate(self.eps)]
                return {"ok": True, "mode": "cluster", "cluster": "fake", "node": "n%d" % k,
                        "epoch": self.epoch, "partitions": self.partitions,
                        "hash": "fnv1a64-fmix64",
                        "owners": [eps[self.owner(p)] for p in range(self.partitions)],
                        "standbys": [eps[self.standby(p)] for p in range(self.partitions)]}
            if op in ("score", "profile", "recommend"):
                ids = req["customers"] if "customers" in req else [req["customer"]]
                results = []
                for cid in ids:
                    p = reference_partition(cid, self.partitions)[1]
                    if self.refuse_all or k not in (self.owner(p), self.standby(p)):
                        return error("unavailable", 'customer "%s" is in partition %d, which '
                                     'this node does not hold: ask its owner' % (cid, p))
                    results.append({"customer": cid, "node": k, "p": p, "op": op})
                if "customers" in req:
                    return {"ok": True, "results": results}
                return dict(results[0], ok=True)
            if op == "track":
                if self.fail_track == k:
                    return error("internal", "boom on n%d" % k)
                rejected, log = [], {}
                for i, e in enumerate(req["events"]):
                    if e.get("type") == "bogus":
                        rejected.append({"index": i, "code": "bad_request",
                                         "message": "unknown type"})
                        continue
                    p = reference_partition(e["customer"], self.partitions)[1]
                    self.seq[p] += 1
                    log[str(p)] = self.seq[p]
                return {"ok": True, "accepted": len(req["events"]) - len(rejected),
                        "duplicates": 0, "rejected": rejected, "log": log}
            if op == "ping":
                return {"ok": True, "pong": True, "node": k}
        return error("unknown_op", "unknown op %r" % op)


class TestSingleEndpoint(unittest.TestCase):
    """One endpoint: exactly today's client, no `cluster` op."""

    def setUp(self):
        self.node = FakeNode(single_handler)

    def tearDown(self):
        self.node.close()

    def exercise(self, ls):
        ls.ping()
        ls.score("alice")
        ls.score_many(["a", "b", "c"], batch_size=2)
        ls.profile("bob")
        ls.recommend("bob", k=2)
        ls.track([{"customer": "a", "type": "page_view", "event_id": "e1"}])
        ls.call("score", {"customer": "x"})

    def test_no_cluster_op(self):
        for ep in (self.node.endpoint, [self.node.endpoint]):
            with Client(ep, timeout=2.0) as ls:
                self.exercise(ls)
                self.assertIsNone(ls.cluster_map)
        self.assertNotIn("cluster", self.node.ops())
        self.assertEqual(self.node.ops().count("score"), 8)     # 2 x (1 + 2 batches + 1)

    def test_no_cluster_op_async(self):
        async def run():
            async with AsyncClient(self.node.endpoint, timeout=2.0) as ls:
                await ls.ping()
                await ls.score("alice")
                await ls.score_many(["a", "b", "c"], batch_size=2)
                await ls.profile("bob")
                await ls.recommend("bob")
                await ls.track([{"customer": "a", "type": "page_view", "event_id": "e1"}])
        asyncio.run(run())
        self.assertNotIn("cluster", self.node.ops())

    def test_several_single_nodes(self):
        other = FakeNode(single_handler)
        try:
            with Client([self.node.endpoint, other.endpoint], timeout=2.0) as ls:
                ls.ping()                                   # no map needed
                self.assertEqual(self.node.ops(), ["ping"])
                self.exercise(ls)
                self.assertIsNone(ls.cluster_map)
            self.assertEqual(self.node.ops().count("cluster"), 1)
            self.assertEqual(other.ops(), [])
        finally:
            other.close()


class TestFakeCluster(unittest.TestCase):

    def setUp(self):
        self.fc = FakeCluster()
        self.ids = ["cust-%03d" % i for i in range(60)]

    def tearDown(self):
        self.fc.close()

    def owner_of(self, cid):
        return self.fc.owner(reference_partition(cid, self.fc.partitions)[1])

    def test_reads_go_to_the_owner(self):
        with Client(self.fc.eps, timeout=2.0) as ls:
            for cid in self.ids[:20]:
                r = ls.score(cid)
                self.assertEqual(r["node"], self.owner_of(cid), cid)
                self.assertEqual(ls.profile(cid)["node"], self.owner_of(cid))
                self.assertEqual(ls.recommend(cid, k=3)["op"], "recommend")
            m = ls.cluster_map
            self.assertIsInstance(m, ClusterMap)
            self.assertEqual((m.epoch, m.partitions, m.cluster), (1, 8, "fake"))
            self.assertEqual(ls.ping()["node"], 0)          # the first endpoint
        self.assertEqual(self.fc.cluster_ops(), 1)
        # every read reached a node that holds it: no refusals
        for k, nd in enumerate(self.fc.nodes):
            for req in nd.requests:
                if req.get("op") in ("score", "profile", "recommend"):
                    self.assertEqual(self.owner_of(req["customer"]), k)

    def test_batch_split_and_merged(self):
        with Client(self.fc.eps, timeout=2.0) as ls:
            ids = self.ids + ["cust-000", "unknown-1"]
            res = ls.score_many(ids, batch_size=7)
            self.assertEqual([r["customer"] for r in res], ids)
            for r in res:
                self.assertEqual(r["node"], self.owner_of(r["customer"]))
            reply = ls.call("score", {"customers": ids[:10], "now": 5})
            self.assertEqual(list(reply), ["results"])
            self.assertEqual([r["customer"] for r in reply["results"]], ids[:10])
        for k, nd in enumerate(self.fc.nodes):
            for req in nd.requests:
                if req.get("op") == "score":
                    self.assertLessEqual(len(req["customers"]), 10)
                    self.assertTrue(all(self.owner_of(c) == k for c in req["customers"]))

    def test_track_merged(self):
        events = []
        for i in range(40):
            etype = "bogus" if i in (3, 17, 31) else "page_view"
            events.append({"customer": self.ids[i % 13], "type": etype, "event_id": "e%d" % i})
        with Client(self.fc.eps, timeout=2.0) as ls:
            r = ls.track(events)
        self.assertEqual(r["accepted"], 37)
        self.assertEqual(r["duplicates"], 0)
        self.assertEqual([x["index"] for x in r["rejected"]], [3, 17, 31])
        parts = {reference_partition(e["customer"], 8)[1] for e in events if e["type"] != "bogus"}
        self.assertEqual(set(r["log"]), {str(p) for p in parts})
        self.assertEqual(list(r)[:3], ["accepted", "duplicates", "rejected"])
        # each node got only its owners' events
        for k, nd in enumerate(self.fc.nodes):
            for req in nd.requests:
                if req.get("op") == "track":
                    self.assertTrue(all(self.owner_of(e["customer"]) == k for e in req["events"]))

    def test_track_part_fails(self):
        self.fc.fail_track = 1
        with Client(self.fc.eps, timeout=2.0) as ls:
            with self.assertRaises(Internal) as cm:
                ls.track([{"customer": c, "type": "page_view", "event_id": "f-" + c}
                          for c in self.ids])
            self.assertIn("boom on n1", str(cm.exception))

    def test_stale_map_refreshed_once(self):
        with Client(self.fc.eps, timeout=2.0) as ls:
            before = [r["node"] for r in ls.score_many(self.ids)]
            self.fc.move_all()                              # map epoch 2
            after = ls.score_many(self.ids)
            self.assertEqual(ls.cluster_map.epoch, 2)
            self.assertEqual([r["customer"] for r in after], self.ids)
            for r in after:
                self.assertEqual(r["node"], self.owner_of(r["customer"]))
            self.assertNotEqual(before, [r["node"] for r in after])
            self.assertEqual(self.fc.cluster_ops(), 2)
            self.fc.move_all()                              # epoch 3
            self.assertEqual(ls.score(self.ids[0])["node"], self.owner_of(self.ids[0]))
            self.assertEqual(self.fc.cluster_ops(), 3)

    def test_refused_twice_raises(self):
        self.fc.refuse_all = True
        with Client(self.fc.eps, timeout=2.0) as ls:
            with self.assertRaises(Unavailable) as cm:
                ls.score(self.ids[0])
            self.assertIn("does not hold", cm.exception.message)
        self.assertEqual(self.fc.cluster_ops(), 2)

    def test_silent_owner_fails_over(self):
        self.fc.silent = {0}
        eps = self.fc.eps[1:]           # the silent node is not asked for the map
        ids = [c for c in self.ids if self.owner_of(c) == 0][:5]
        self.assertTrue(ids)
        with Client(eps, timeout=2.0, retries=0, failover=0.15) as ls:
            t0 = time.monotonic()
            r = ls.score(ids[0])
            self.assertEqual(r["node"], 1)                  # the standby
            self.assertEqual(ls.last_attempts, 2)
            res = ls.score_many(self.ids)
            self.assertEqual([x["customer"] for x in res], self.ids)
            self.assertLess(time.monotonic() - t0, 1.5)
        # without a failover time an attempt waits the whole timeout
        with Client(eps, timeout=0.3, retries=0) as ls:
            t0 = time.monotonic()
            self.assertEqual(ls.score(ids[1])["node"], 1)
            self.assertGreaterEqual(time.monotonic() - t0, 0.3)

    def test_map_gaps_filled(self):
        # node 0 has not heard of node 2 yet: node 1's map fills the gaps
        self.fc.unknown = {0: {2}}
        with Client(self.fc.eps, timeout=2.0) as ls:
            for r in ls.score_many(self.ids):
                self.assertEqual(r["node"], self.owner_of(r["customer"]))
            self.assertTrue(ls.cluster_map.complete())
            self.assertEqual(ls.cluster_map.owners[2], self.fc.eps[2])
            self.assertEqual(ls.endpoint, self.fc.eps[0])
        self.assertEqual([nd.ops().count("cluster") for nd in self.fc.nodes], [1, 1, 0])
        # nobody knows node 2: its partitions go to their standby (node 0)
        self.fc.unknown = {0: {2}, 1: {2}, 2: {2}}
        with Client(self.fc.eps, timeout=2.0) as ls:
            for r in ls.score_many(self.ids):
                owner = self.owner_of(r["customer"])
                self.assertEqual(r["node"], 0 if owner == 2 else owner)
            self.assertFalse(ls.cluster_map.complete())

    def replace_node(self, k):
        """Node k comes back under a new address (a pod's new IP): the map
        names the new one, the old endpoint answers nothing."""
        new = FakeNode(self.fc.handle)
        old = self.fc.nodes[k]
        with self.fc._lock:
            self.fc.nodes[k] = new
            self.fc.eps[k] = new.endpoint
            self.fc.epoch += 1
        old.close()
        return old.endpoint

    def test_replaced_node_is_let_go(self):
        with Client(self.fc.eps[:2], timeout=2.0) as ls:
            for cid in self.ids:
                self.assertEqual(ls.score(cid)["node"], self.owner_of(cid))
            gone = self.replace_node(2)
            self.assertIn(gone, ls._subs)
            self.assertEqual(ls.refresh_map().epoch, 2)
            self.assertNotIn(gone, ls._subs)            # its socket is closed
            self.assertIn(self.fc.eps[2], ls.cluster_map.endpoints())
            for cid in self.ids:
                self.assertEqual(ls.score(cid)["node"], self.owner_of(cid))
            # the listed endpoints stay, even when no map names them
            self.assertEqual(set(ls._subs), set(self.fc.eps))

    def test_replaced_node_is_let_go_async(self):
        async def run():
            async with AsyncClient(self.fc.eps[:2], timeout=2.0) as ls:
                await asyncio.gather(*(ls.score(c) for c in self.ids))
                gone = self.replace_node(2)
                self.assertIn(gone, ls._subs)
                self.assertEqual((await ls.refresh_map()).epoch, 2)
                self.assertNotIn(gone, ls._subs)
                got = await asyncio.gather(*(ls.score(c) for c in self.ids))
                for r in got:
                    self.assertEqual(r["node"], self.owner_of(r["customer"]))
                self.assertEqual(set(ls._subs), set(self.fc.eps))
        asyncio.run(run())

    def test_async(self):
        async def run():
            async with AsyncClient(self.fc.eps, timeout=2.0) as ls:
                got = await asyncio.gather(*(ls.score(c) for c in self.ids))
                for r in got:
                    self.assertEqual(r["node"], self.owner_of(r["customer"]))
                res = await ls.score_many(self.ids + ["x"], batch_size=9)
                self.assertEqual([r["customer"] for r in res], self.ids + ["x"])
                r = await ls.track([{"customer": c, "type": "bogus" if i == 5 else "page_view",
                                     "event_id": "a%d" % i} for i, c in enumerate(self.ids)])
                self.assertEqual((r["accepted"], [x["index"] for x in r["rejected"]]), (59, [5]))
                self.fc.move_all()
                res = await ls.score_many(self.ids)
                for r in res:
                    self.assertEqual(r["node"], self.owner_of(r["customer"]))
                self.assertEqual(ls.cluster_map.epoch, 2)
                self.assertEqual((await ls.ping())["node"], 0)
                self.fc.silent = {0}
                ids0 = [c for c in self.ids if self.owner_of(c) == 0]
                t0 = time.monotonic()
            async with AsyncClient(self.fc.eps[1:], timeout=2.0, retries=0,
                                   failover=0.15) as ls:
                got = await asyncio.gather(*(ls.profile(c) for c in ids0))
                self.assertTrue(all(r["node"] == (self.owner_of(r["customer"]) + 1) % 3
                                    for r in got))
                self.assertLess(time.monotonic() - t0, 1.5)
        asyncio.run(run())
        # the first client asked node 0 (its home) twice, the second node 1 once
        self.assertEqual([nd.ops().count("cluster") for nd in self.fc.nodes], [2, 1, 0])


# ---------------------------------------------------------------------------
# A real cluster


def find_nats_server():
    for cand in (os.environ.get("NATS_SERVER"), shutil.which("nats-server"),
                 "/usr/sbin/nats-server", "/usr/local/sbin/nats-server",
                 "/usr/local/bin/nats-server"):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def cluster_skip_reason():
    if find_nats_server() is None:
        return "nats-server is not installed (scripts/deps.sh installs it)"
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        return "no leadscore binary at %s (set LEADSCORE_BIN)" % BIN
    try:
        r = subprocess.run([BIN, "cluster", "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "%s cluster --help failed: %s" % (BIN, e)
    if r.returncode != 0:
        return ("%s has no cluster mode (`cluster --help` exited %d: %s)"
                % (BIN, r.returncode, r.stdout.decode("utf-8", "replace").strip()[:200]))
    return None


CLUSTER_SH = os.path.join(REPO, "scripts", "cluster.sh")
REQUESTS_RE = re.compile(r"^\s+requests\s+(tcp://\S+)")

#: reply keys that depend on when the request was answered, not on the data
TIMING_KEYS = {"took_us", "took_ms", "elapsed_us", "elapsed_ms", "answered_at", "map_epoch"}


def strip_timing(x):
    if isinstance(x, dict):
        return {k: strip_timing(v) for k, v in x.items() if k not in TIMING_KEYS}
    if isinstance(x, list):
        return [strip_timing(v) for v in x]
    return x


def differences(a, b, path="$"):
    """Where two replies differ (floats equal within 1e-9 relative)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append("%s.%s: only in %s" % (path, k, "cluster" if k in a else "control"))
            else:
                out.extend(differences(a[k], b[k], "%s.%s" % (path, k)))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return ["%s: %d items vs %d" % (path, len(a), len(b))]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, "%s[%d]" % (path, i))]
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
                and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
            return []
    elif a == b:
        return []
    return ["%s: %r (cluster) vs %r (control)" % (path, a, b)]


class ControlServer:
    """A plain single-node `leadscore serve` (no NATS)."""

    def __init__(self, data_dir):
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data", data_dir, "--bind", "tcp://127.0.0.1:0", "--pull", "none"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        lines = queue.Queue()

        def drain():
            for line in iter(self.proc.stdout.readline, b""):
                lines.put(line.decode("utf-8", "replace"))
            lines.put(None)
        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()
        self.endpoint = None
        deadline = time.monotonic() + 15
        while self.endpoint is None:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.stop()
                raise RuntimeError("the control server did not report its endpoint")
            m = REQUESTS_RE.match(line)
            if m:
                self.endpoint = m.group(1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._drain.join(5)
        self.proc.stdout.close()


def run_cluster_sh(*args, timeout=90):
    return subprocess.run(["bash", CLUSTER_SH] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout)


@unittest.skipIf(cluster_skip_reason(), cluster_skip_reason())
class TestRealCluster(unittest.TestCase):
    """Three nodes, eight partitions, against a single-node control."""

    NODES, PARTITIONS = 3, 8

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="leadscore-pycluster-")
        cls.dir = os.path.join(cls.tmp, "cluster")
        cls.name = "py%s" % uuid.uuid4().hex[:8]
        cls.control = None
        try:
            r = run_cluster_sh("up", "--dir", cls.dir, "--nodes", str(cls.NODES),
                               "--partitions", str(cls.PARTITIONS), "--cluster", cls.name,
                               "--leadscore", BIN, "--timeout", "40")
            if r.returncode != 0:
                raise RuntimeError("scripts/cluster.sh up failed (exit %d):\n%s"
                                   % (r.returncode, r.stdout.decode("utf-8", "replace")))
            cls.eps = []
            for k in range(1, cls.NODES + 1):
                with open(os.path.join(cls.dir, "node%d.ep" % k)) as f:
                    cls.eps.append(f.read().strip())
            cls.control = ControlServer(os.path.join(cls.tmp, "control"))
            # A node learns the others' endpoints once a second: right after
            # `up` its `cluster` reply may still lack some (the client fills
            # them from the next node's map; test_map_gaps_filled).  Wait, so
            # that every node's map is whole and the routing below exact.
            deadline = time.monotonic() + 10
            for ep in cls.eps:
                with Client(ep, timeout=5.0) as node:
                    while not all(node.call("cluster")["owners"]) and time.monotonic() < deadline:
                        time.sleep(0.1)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.control is not None:
                cls.control.stop()
        finally:
            try:
                r = run_cluster_sh("down", "--dir", cls.dir, timeout=60)
                if r.returncode != 0:
                    sys.stderr.write("cluster.sh down: %s\n" % r.stdout.decode("utf-8", "replace"))
            finally:
                shutil.rmtree(cls.tmp, ignore_errors=True)

    def status(self):
        r = run_cluster_sh("status", "--dir", self.dir, "--json", timeout=30)
        if r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout.decode("utf-8"))
        except ValueError:
            return None

    def wait_applied(self, timeout=20.0):
        """Until every partition's owner and standby applied its whole log."""
        last = [None]

        def caught_up():
            s = last[0] = self.status()
            return bool(s and s.get("parts") and all(p.get("lag") == 0 and
                                                     (p.get("applied") or {}).get(p.get("owner"))
                                                     == p.get("last_seq")
                                                     for p in s["parts"]))
        if not wait_until(caught_up, timeout, 0.2):
            self.fail("the cluster did not apply every event within %gs: %s" % (timeout, last[0]))

    def node_requests(self):
        """Each node's count of requests per op (``stats``)."""
        out = []
        for ep in self.eps:
            with Client(ep, timeout=5.0) as node:
                out.append(node.stats()["requests"])
        return out

    def node_errors(self):
        """Each node's count of error replies (``stats``)."""
        out = []
        for ep in self.eps:
            with Client(ep, timeout=5.0) as node:
                out.append(node.stats().get("errors"))
        return out

    def assert_same(self, got, want, what):
        diffs = differences(strip_timing(got), strip_timing(want))
        self.assertFalse(diffs, "%s differs:\n  %s" % (what, "\n  ".join(diffs[:20])))

    def test_cluster_equals_single_node(self):
        now = int(time.time() * 1000)
        run = uid("pc")
        customers = ["%s-%02d" % (run, i) for i in range(60)]
        types = ["page_view", "product_view", "add_to_cart", "purchase", "email_open"]
        events = []
        for i in range(300):
            c = customers[(i * 7) % 60]
            e = {"customer": c, "type": types[i % 5], "event_id": "%s-e%03d" % (run, i),
                 "ts": now - 40 * 86400000 + i * 3600000 + (i * 7919) % 600000,
                 "category": ["shoes/running", "bags", "hats"][i % 3],
                 "product": "SKU-%d" % (i % 11)}
            if e["type"] in ("product_view", "add_to_cart", "purchase"):
                e["price"] = 10.0 + (i % 17) * 2.5
            if e["type"] == "purchase":
                e["order_id"] = "%s-o%03d" % (run, i)
            events.append(e)
        events[41]["type"] = "bogus"                # rejected, by index, by both
        events[222]["customer"] = 17

        control = Client(self.control.endpoint, timeout=5.0)
        ls = Client(self.eps, timeout=5.0)
        errors_before = self.node_errors()
        try:
            for start in range(0, 300, 100):
                batch = events[start:start + 100]
                got, want = ls.track(batch), control.track(batch)
                self.assertIn("log", got)
                self.assertTrue(got["log"])
                self.assertEqual(got["accepted"], want["accepted"])
                self.assertEqual(got["rejected"], want["rejected"])
                self.assertEqual(got["duplicates"], want["duplicates"])
            self.assertIsNotNone(ls.cluster_map)
            self.assertEqual(ls.cluster_map.partitions, self.PARTITIONS)
            self.assertEqual(sorted(set(ls.cluster_map.owners)), sorted(self.eps))
            self.wait_applied()

            for c in customers:
                self.assert_same(ls.score(c, now=now), control.score(c, now=now), "score " + c)
            # One hop: a forwarded read is counted by two nodes, a routed one
            # by its owner only.
            before = self.node_requests()
            for c in customers[:15]:
                self.assert_same(ls.score(c, explain=True, now=now),
                                 control.score(c, explain=True, now=now), "explain " + c)
                self.assert_same(ls.profile(c, now=now), control.profile(c, now=now), "profile " + c)
                self.assert_same(ls.recommend(c, k=3, now=now), control.recommend(c, k=3, now=now),
                                 "recommend " + c)
            after = self.node_requests()
            for op in ("score", "profile", "recommend"):
                self.assertEqual(sum(a[op] - b[op] for a, b in zip(after, before)), 15,
                                 "%s requests per node: %s -> %s"
                                 % (op, [b[op] for b in before], [a[op] for a in after]))
            ids = customers + [run + "-nobody", customers[3]]
            batched = ls.score_many(ids, now=now, batch_size=7)
            self.assert_same(batched, control.score_many(ids, now=now), "score_many")
            self.assert_same(batched[:60], [ls.score(c, now=now) for c in customers],
                             "score_many vs score")
            self.assert_same(ls.call("score", {"customers": ids, "now": now}),
                             control.call("score", {"customers": ids, "now": now}),
                             "call score customers")

            async def via_async():
                async with AsyncClient(self.eps, timeout=5.0) as als:
                    singles = await asyncio.gather(*(als.score(c, now=now) for c in customers))
                    return singles, await als.score_many(ids, now=now, batch_size=11)
            singles, batched_async = asyncio.run(via_async())
            self.assert_same(singles, batched[:60], "async score")
            self.assert_same(batched_async, batched, "async score_many")

            # Resending a batch (same event ids) counts nothing twice.
            ls.track(events[:100])
            self.wait_applied()
            self.assert_same(ls.score_many(customers, now=now), batched[:60], "after a resend")

            # No node refused a request: the client went to the owners itself.
            self.assertEqual(self.node_errors(), errors_before)
        finally:
            ls.close()
            control.close()

    def test_moved_partition(self):
        """A partition moves twice: a client on the old map still gets the
        right answers (the old owner forwards), and after refresh_map()
        goes to the new owner itself.  A node refuses a forwarded read it
        does not hold with the "does not hold" message the client reacts
        to."""
        now = int(time.time() * 1000)
        run = uid("pm")
        ids = ["%s-%03d" % (run, i) for i in range(40)]
        part = partition_of(ids[0], self.PARTITIONS)
        ids_p = [c for c in ids if partition_of(c, self.PARTITIONS) == part]
        events = [{"customer": c, "type": "add_to_cart", "price": 12.5, "event_id": "%s-%d" % (c, j),
                   "ts": now - 86400000 + j * 60000} for c in ids for j in range(2)]
        ls = Client(self.eps, timeout=5.0)
        control = Client(self.control.endpoint, timeout=5.0)
        try:
            ls.track(events)
            control.track(events)
            self.wait_applied()
            want = control.score_many(ids, now=now)
            self.assert_same(ls.score_many(ids, now=now), want, "before the move")
            m = ls.cluster_map
            owner_ep, standby_ep = m.owners[part], m.standbys[part]
            nodes = ["node%d" % k for k in range(1, self.NODES + 1)]
            owner, standby = nodes[self.eps.index(owner_ep)], nodes[self.eps.index(standby_ep)]
            third = [n for n in nodes if n not in (owner, standby)][0]
            with open(os.path.join(self.dir, "nats.urls")) as f:
                urls = f.read().strip()
            # third becomes owner (the old owner its standby), then the old
            # standby: the old owner holds the partition no more.
            for to in (third, standby):
                r = subprocess.run([BIN, "cluster", "move", "--nats", urls, "--cluster", self.name,
                                    str(part), to], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=30)
                self.assertEqual(r.returncode, 0, r.stdout)
            with Client(owner_ep, timeout=5.0) as old:
                self.assertTrue(wait_until(lambda: old.call("cluster")["epoch"] >= m.epoch + 2,
                                           10.0, 0.1), "the old owner did not see the moves")
            self.wait_applied()
            self.assertEqual(ls.cluster_map.epoch, m.epoch)          # still the old map
            self.assert_same(ls.score(ids_p[0], now=now), control.score(ids_p[0], now=now),
                             "score on the old map")
            self.assertIsNotNone(ls.refresh_map())
            self.assertGreaterEqual(ls.cluster_map.epoch, m.epoch + 2)
            self.assertEqual(ls.cluster_map.owners[part], standby_ep)
            self.assertEqual(ls.cluster_map.standbys[part], self.eps[nodes.index(third)])
            self.assert_same(ls.score_many(ids, now=now), want, "score_many after the move")

            # The refusal the client reacts to ("does not hold": fetch the
            # map, resend).  A node refuses instead of forwarding a request
            # that another node forwarded (routing id "lsfwd:...",
            # src/forward.h); play such a node.
            sock = zmq.Context.instance().socket(zmq.DEALER)
            try:
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.IDENTITY, b"lsfwd:pytest-" + uuid.uuid4().hex[:8].encode())
                sock.connect(owner_ep)
                sock.send_multipart([b"", msgpack.packb({"op": "score", "customer": ids_p[0],
                                                         "id": 1})])
                self.assertTrue(sock.poll(5000), "no answer from the old owner")
                reply = msgpack.unpackb(sock.recv_multipart()[-1], raw=False)
            finally:
                sock.close(0)
            err = leadscore.error_from_reply(reply)
            self.assertIsInstance(err, Unavailable, reply)
            self.assertTrue(leadscore.cluster.not_held(err), reply)
        finally:
            ls.close()
            control.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
