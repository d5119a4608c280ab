#!/usr/bin/python3
"""Tests of the synchronous leadscore.Client and Pusher against a real
`leadscore serve` (see run_tests.sh; support.py starts the servers)."""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from support import (BIN, EVENT_TYPES, PKG_DIR, SCORE_FIELDS, Server,
                     ServerTestCase, ev, free_port, setUpModule, uid,
                     wait_until)

import zmq

import leadscore as lc
from leadscore import (BadRequest, Client, LeadscoreError, Pusher, Timeout,
                       TooLarge, Unauthorized, UnknownOp)

HERE = PKG_DIR

__all__ = ["setUpModule"]


class TestOps(ServerTestCase):

    def test_ping(self):
        r = self.ls.ping()
        self.assertIs(r["pong"], True)
        self.assertIsInstance(r["version"], str)
        self.assertEqual(self.ls.last_attempts, 1)

    def test_track_then_score(self):
        c = uid("alice")
        before = self.ls.score(c)
        self.assertIs(before["known"], False)
        r = self.ls.track([
            ev(c, "product_view", category="shoes/running", price=89.9),
            ev(c, "add_to_cart", category="shoes/running", price=89.9),
        ])
        self.assertEqual(r, {"accepted": 2, "duplicates": 0, "rejected": []})
        s = self.ls.score(c)
        for field in SCORE_FIELDS:
            self.assertIn(field, s, "score result lacks %r" % field)
        self.assertNotIn("explain", s)
        self.assertEqual(s["customer"], c)
        self.assertIs(s["known"], True)
        self.assertGreaterEqual(s["score"], 0.0)
        self.assertLessEqual(s["score"], 1.0)
        self.assertGreater(s["score"], before["score"], "a cart add raises readiness")
        self.assertIsInstance(s["score_100"], int)
        self.assertLessEqual(abs(s["score_100"] - 100 * s["score"]), 1.0)
        self.assertIn(s["tier"], ("hot", "warm", "cold"))
        self.assertIn(s["customer_type"], ("prospect", "new", "occasional",
                                           "regular", "big_spender", "sale_hunter"))
        self.assertIn(s["phase"], ("prospect", "illusion", "trust",
                                   "identification", "disappointment"))
        self.assertGreaterEqual(s["p_alive"], 0.0)
        self.assertLessEqual(s["p_alive"], 1.0)
        self.assertIsInstance(s["actions"], list)
        self.assertIsInstance(s["segments"], list)
        self.assertTrue(s["model"])

        x = self.ls.score(c, explain=True, now=int(time.time() * 1000))
        self.assertTrue(x["explain"])
        for item in x["explain"]:
            self.assertEqual(set(item), {"feature", "value", "contribution"})

    def test_duplicates_counted_once(self):
        c = uid("dup")
        e = ev(c, "product_view", category="books")
        r = self.ls.track([e, dict(e)])
        self.assertEqual((r["accepted"], r["duplicates"]), (1, 1))
        r = self.ls.track([dict(e)])
        self.assertEqual((r["accepted"], r["duplicates"]), (0, 1))
        self.assertEqual(self.ls.profile(c)["features"]["product_view_count"], 1)

    def test_score_many_order(self):
        cs = [uid("m%d" % i) for i in range(5)]
        self.ls.track([ev(c, "page_view") for c in cs[:3]])
        ask = [cs[2], cs[4], cs[0], cs[3], cs[1]]
        for batch_size in (1000, 2):        # one request; three pipelined ones
            res = self.ls.score_many(ask, batch_size=batch_size)
            self.assertEqual([r["customer"] for r in res], ask)
            self.assertEqual([r["known"] for r in res], [True, False, True, False, True])
            for r in res:
                self.assertLessEqual(0.0, r["score"])
                self.assertLessEqual(r["score"], 1.0)
        self.assertEqual(self.ls.score_many([]), [])
        self.assertIn("explain", self.ls.score_many(ask[:1], explain=True)[0])

    def test_recommend(self):
        c = uid("rec")
        self.ls.track([ev(c, "product_view", category="shoes/running/road")
                       for _ in range(3)] + [ev(c, "page_view", category="books")])
        r = self.ls.recommend(c)
        self.assertEqual(r["customer"], c)
        segs = r["segments"]
        self.assertTrue(segs)
        self.assertLessEqual(len(segs), 3)
        for s in segs:
            self.assertEqual(set(s), {"segment", "weight", "reason"})
        self.assertEqual(segs[0]["segment"], "running")
        self.assertEqual([s["weight"] for s in segs],
                         sorted((s["weight"] for s in segs), reverse=True))
        self.assertEqual(len(self.ls.recommend(c, k=1)["segments"]), 1)

    def test_profile_counts(self):
        c = uid("prof")
        now = int(time.time() * 1000)
        events = [ev(c, "page_view", ts=now - 100),      # out of order on purpose
                  ev(c, "product_view", category="apparel", ts=now - 3000),
                  ev(c, "product_view", category="apparel", ts=now - 2000),
                  ev(c, "product_view", category="apparel", ts=now - 1000),
                  ev(c, "add_to_cart", price=20.0, ts=now - 900),
                  ev(c, "add_to_cart", price=20.0, ts=now - 800),
                  ev(c, "purchase", price=20.0, quantity=2, order_id="o1", ts=now - 500)]
        self.assertEqual(self.ls.track(events)["accepted"], len(events))
        p = self.ls.profile(c)
        self.assertEqual(p["customer"], c)
        self.assertIs(p["known"], True)
        f = p["features"]
        for t in EVENT_TYPES:
            self.assertIn(t + "_count", f)
        expect = {"product_view": 3, "add_to_cart": 2, "purchase": 1, "page_view": 1}
        for t in EVENT_TYPES:
            self.assertEqual(f[t + "_count"], expect.get(t, 0), t)
        self.assertEqual(f["first_seen"], now - 3000)
        self.assertEqual(f["last_seen"], now - 100)
        self.assertIs(self.ls.profile(uid("nobody"))["known"], False)

    def test_reads_as_of_a_time(self):
        c = uid("asof")
        day = 86400000
        t0 = int(time.time() * 1000) - 30 * day
        events = [ev(c, "product_view", category="shoes/running/road", ts=t0),
                  ev(c, "purchase", price=10.0, order_id="o1", ts=t0 + day),
                  ev(c, "purchase", price=5.0, order_id="o1", ts=t0 + day),
                  ev(c, "purchase", price=7.0, order_id="o2", ts=t0 + 10 * day),
                  ev(c, "page_view", category="books", ts=t0 + 11 * day)]
        self.assertEqual(self.ls.track(events)["accepted"], len(events))
        then = self.ls.profile(c, now=t0 + 2 * day)
        self.assertIs(then["known"], True)
        f = then["features"]
        self.assertEqual((f["purchase_count"], f["purchase_lines"], f["page_view_count"]), (1, 2, 0))
        self.assertEqual(f["spend"], 15.0)
        self.assertEqual(f["last_seen"], t0 + day)
        f = self.ls.profile(c)["features"]
        self.assertEqual((f["purchase_count"], f["purchase_lines"], f["page_view_count"]), (2, 3, 1))
        self.assertIs(self.ls.profile(c, now=t0 - 1)["known"], False)
        self.assertIs(self.ls.score(c, now=t0 - 1)["known"], False)
        self.assertIs(self.ls.score(c, now=t0)["known"], True)
        r = self.ls.recommend(c, now=t0 + 2 * day)
        self.assertEqual(r["segments"][0]["segment"], "running")
        self.assertIsInstance(self.ls.recommend(c, k=1, now=t0 - 1)["segments"], list)

    def test_model_reload_stats(self):
        m = self.ls.model()
        for field in ("name", "version", "trained_at", "horizon_days", "features"):
            self.assertIn(field, m)
        r = self.ls.reload()
        self.assertEqual((r["name"], r["version"]), (m["name"], m["version"]))
        with self.assertRaises(LeadscoreError):
            self.ls.reload(os.path.join(self.tmp, "no-such-model.json"))
        self.assertEqual(self.ls.model()["version"], m["version"])
        st = self.ls.stats()
        self.assertIsInstance(st, dict)
        self.assertTrue(st)

    def test_alias(self):
        anon, cust = uid("anon"), uid("cust")
        self.ls.track([ev(anon, "product_view", category="home"),
                       ev(anon, "add_to_cart", category="home", price=10.0)])
        self.ls.track([ev(cust, "page_view")])
        try:
            r = self.ls.alias(anon, cust)
        except UnknownOp as e:
            self.skipTest("server answers unknown_op for alias (not implemented): %s" % e)
        self.assertIs(r["merged"], True)
        pa, pc = self.ls.profile(anon), self.ls.profile(cust)
        for f in ("product_view_count", "add_to_cart_count", "page_view_count"):
            self.assertEqual(pa["features"][f], pc["features"][f])
        self.assertEqual(pc["features"]["product_view_count"], 1)
        self.assertEqual(pc["features"]["page_view_count"], 1)
        self.assertIs(self.ls.alias(anon, cust)["merged"], False)

    def test_forget(self):
        c = uid("gone")
        self.ls.track([ev(c, "page_view")])
        try:
            r = self.ls.forget(c)
        except UnknownOp as e:
            self.skipTest("server answers unknown_op for forget (not implemented): %s" % e)
        self.assertIs(r["deleted"], True)
        self.assertIs(self.ls.profile(c)["known"], False)

    def test_kpis(self):
        now = int(time.time() * 1000)
        try:
            k = self.ls.kpis(from_ms=now - 86400000, to_ms=now)
        except UnknownOp as e:
            self.skipTest("server answers unknown_op for kpis (not implemented): %s" % e)
        self.assertIsInstance(k, dict)
        self.assertTrue(k)


class TestErrors(ServerTestCase):

    def test_unknown_event_type_is_rejected(self):
        c = uid("rej")
        r = self.ls.track([ev(c, "page_view"), ev(c, "teleport"), ev(c, "search")])
        self.assertEqual(r["accepted"], 2)
        self.assertEqual(len(r["rejected"]), 1)
        self.assertEqual(r["rejected"][0]["index"], 1)
        self.assertEqual(r["rejected"][0]["code"], "bad_request")
        self.assertTrue(r["rejected"][0]["message"])
        self.assertEqual(self.ls.profile(c)["features"]["search_count"], 1)

    def test_bad_request(self):
        with self.assertRaises(BadRequest) as cm:
            self.ls.score(12345)
        self.assertEqual(cm.exception.code, "bad_request")
        self.assertIsInstance(cm.exception, LeadscoreError)
        self.assertTrue(cm.exception.message)
        with self.assertRaises(BadRequest):
            self.ls.call("score", {"customer": "x", "no_such_field": 1})
        self.assertIs(self.ls.ping()["pong"], True)     # the server carries on

    def test_unknown_op(self):
        with self.assertRaises(UnknownOp) as cm:
            self.ls.call("no_such_op")
        self.assertEqual(cm.exception.code, "unknown_op")

    def test_too_large(self):
        with self.assertRaises(TooLarge):
            self.ls.score_many([uid("c") for _ in range(1001)], batch_size=2000)
        with self.assertRaises(TooLarge):       # a frame over max-frame: no id echoed
            self.ls.call("ping", {"pad": "x" * (1 << 20)})
        self.assertIs(self.ls.ping()["pong"], True)

    def test_late_replies_discarded(self):
        # One request of a pipelined score_many fails: the call raises at
        # once, and the replies still due for the other requests arrive
        # later; they must be discarded, never taken as the answer to a
        # later call.
        names = ["a", 5] + ["late-%d" % i for i in range(200)]
        with self.assertRaises(BadRequest):
            self.ls.score_many(names, batch_size=1)
        time.sleep(0.2)
        self.assertIs(self.ls.ping()["pong"], True)
        self.assertGreaterEqual(self.ls.discarded_replies, 1)
        self.assertEqual(self.ls.score("zed")["customer"], "zed")
        self.assertEqual([r["customer"] for r in self.ls.score_many(["x", "y"], batch_size=1)],
                         ["x", "y"])


class TestTimeouts(unittest.TestCase):

    def test_nothing_listens(self):
        ep = "tcp://127.0.0.1:%d" % free_port()
        with Client(ep, timeout=0.2, retries=2) as ls:
            t0 = time.monotonic()
            with self.assertRaises(Timeout) as cm:
                ls.ping()
            took = time.monotonic() - t0
            self.assertEqual(ls.last_attempts, 3)
            self.assertGreaterEqual(took, 0.55)
            self.assertLess(took, 1.5)
            self.assertEqual(cm.exception.code, "timeout")
            self.assertIsInstance(cm.exception, LeadscoreError)

            # track without event ids: not safe to repeat, one attempt only
            t0 = time.monotonic()
            with self.assertRaises(Timeout):
                ls.track([{"customer": "x", "type": "page_view"}])
            self.assertEqual(ls.last_attempts, 1)
            self.assertLess(time.monotonic() - t0, 0.5)

            # track with an event id on every event: retried
            with self.assertRaises(Timeout):
                ls.track([ev("x", "page_view"), ev("x", "search")])
            self.assertEqual(ls.last_attempts, 3)

            # alias is never repeated
            with self.assertRaises(Timeout):
                ls.alias("a", "b")
            self.assertEqual(ls.last_attempts, 1)

    def test_retry_after_restart(self):
        tmp = tempfile.mkdtemp(prefix="leadscore-pytest-")
        data = os.path.join(tmp, "data")
        srv = Server(data).start()
        restarted = []
        try:
            c = uid("survivor")
            with Client(srv.endpoint, timeout=0.4, retries=6) as ls:
                self.assertEqual(ls.track([ev(c, "purchase", price=5.0)])["accepted"], 1)
                self.assertEqual(srv.stop(), 0)

                # down: a track without event ids gives up after one attempt
                with self.assertRaises(Timeout):
                    ls.track([{"customer": c, "type": "page_view"}])
                self.assertEqual(ls.last_attempts, 1)

                again = Server(data, bind=srv.endpoint, pull=srv.pull_endpoint)

                def restart():
                    time.sleep(0.7)
                    restarted.append(again.start())
                th = threading.Thread(target=restart, daemon=True)
                th.start()
                t0 = time.monotonic()
                s = ls.score(c)                 # retried until the server is back
                took = time.monotonic() - t0
                th.join(10)
                self.assertTrue(restarted, "the server did not come back")
                self.assertGreaterEqual(ls.last_attempts, 2)
                self.assertLess(took, 0.4 * 7 + 0.5)
                self.assertIs(s["known"], True)
                self.assertEqual(ls.profile(c)["features"]["purchase_count"], 1)
                self.assertEqual(ls.profile(c)["features"]["page_view_count"], 0)
            self.assertEqual(again.stop(), 0)
        finally:
            srv.kill()
            for s in restarted:
                s.kill()
            shutil.rmtree(tmp, ignore_errors=True)


class TestPusherAndExample(ServerTestCase):

    def test_pusher_batches_land(self):
        c = uid("pushed")
        events = ([ev(c, "product_view", category="sports") for _ in range(7)] +
                  [ev(c, "add_to_cart", price=3.0) for _ in range(3)])
        with Pusher(self.server.pull_endpoint) as p:
            self.assertEqual(p.push(events, batch_size=4), 3)
            self.assertEqual(p.push([]), 0)

        def landed():
            f = self.ls.profile(c)["features"]
            return (f["product_view_count"], f["add_to_cart_count"]) == (7, 3)
        self.assertTrue(wait_until(landed, timeout=5.0),
                        "pushed events not in the profile after 5 s: %r"
                        % self.ls.profile(c)["features"].get("product_view_count"))

    def test_storefront_example(self):
        p = subprocess.run([sys.executable, os.path.join(HERE, "example_storefront.py"),
                            "--connect", self.server.endpoint],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, out + p.stderr.decode())
        self.assertIn("RENDER:", out)
        self.assertIn("running", out)


@unittest.skipUnless(zmq.has("curve"), "libzmq without CurveZMQ")
class TestCurve(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="leadscore-pytest-")

        def k(name):
            return os.path.join(cls.tmp, name)
        for name in ("server", "shop", "ops"):
            subprocess.run([BIN, "keygen", "--out", k(name)], check=True, timeout=10,
                           stdout=subprocess.DEVNULL)
        with open(k("allow.txt"), "w") as f:
            f.write("# shop keys\n" + lc.read_key_file(k("shop.pub")) + "\n")
        with open(k("admin.txt"), "w") as f:
            f.write(lc.read_key_file(k("ops.pub")) + "\n")
        cls.server = Server(k("data"), extra=[
            "--curve-secret", k("server.key"), "--allow", k("allow.txt"),
            "--admin", k("admin.txt")]).start()

    @classmethod
    def tearDownClass(cls):
        try:
            assert cls.server.stop() == 0, cls.server.stderr_text()
        finally:
            cls.server.kill()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def k(self, name):
        return os.path.join(self.tmp, name)

    def test_key_files(self):
        k = self.k
        with open(k("server.pub")) as f:
            self.assertTrue(any(line.startswith("#") for line in f))
        self.assertEqual(len(lc.read_key_file(k("server.pub"))), 40)
        self.assertEqual(len(lc.read_key_file(k("shop.key"))), 40)

    def test_curve_clients(self):
        k = self.k
        ep = self.server.endpoint
        with Client.from_key_files(ep, k("server.pub"), k("shop"), timeout=2.0) as shop:
            self.assertIs(shop.ping()["pong"], True)
            c = uid("secure")
            self.assertEqual(shop.track([ev(c, "page_view")])["accepted"], 1)
            self.assertIs(shop.score(c)["known"], True)
            with self.assertRaises(Unauthorized):
                shop.stats()
        with Client.from_key_files(ep, k("server.pub"), k("ops")) as ops:
            self.assertTrue(ops.stats())
        # keys given as Z85 text
        with Client(ep, curve_server_key=lc.read_key_file(k("server.pub")),
                    curve_public_key=lc.read_key_file(k("shop.pub")),
                    curve_secret_key=lc.read_key_file(k("shop.key"))) as shop:
            self.assertIs(shop.ping()["pong"], True)
        # a plain client, and a client with an unlisted key, get no answer
        with Client(ep, timeout=0.3, retries=0) as plain:
            with self.assertRaises(Timeout):
                plain.ping()
        pub, sec = zmq.curve_keypair()
        with Client(ep, timeout=0.3, retries=0,
                    curve_server_key=lc.read_key_file(k("server.pub")),
                    curve_public_key=pub, curve_secret_key=sec) as stranger:
            with self.assertRaises(Timeout):
                stranger.ping()

    def test_curve_audiences(self):
        k = self.k
        ep = self.server.endpoint
        name = uid("secure")
        with Client.from_key_files(ep, k("server.pub"), k("shop"), timeout=2.0) as shop:
            with self.assertRaises(Unauthorized):        # defining and deleting: admin keys only
                shop.audience_put(name, "score >= 0.5")
            with Client.from_key_files(ep, k("server.pub"), k("ops")) as ops:
                r = ops.audience_put(name, "score >= 0.5")
                self.assertEqual((r["created"], r["changed"]), (True, True))
                self.assertIn(name, [a["name"] for a in shop.audience_list()])   # reading: any key
                self.assertEqual(shop.audience_members(name)["name"], name)
                self.assertIn("next", shop.triggers(0))
                with self.assertRaises(Unauthorized):
                    shop.audience_delete(name)
                self.assertEqual(ops.audience_delete(name), {"deleted": True})

    def test_curve_pusher(self):
        k = self.k
        c = uid("securepush")
        with Pusher.from_key_files(self.server.pull_endpoint, k("server.pub"), k("shop")) as p:
            p.push([ev(c, "search"), ev(c, "search")])
        with Client.from_key_files(self.server.endpoint, k("server.pub"), k("shop")) as ls:
            self.assertTrue(wait_until(
                lambda: ls.profile(c)["features"]["search_count"] == 2, timeout=5.0))


class TestOffline(unittest.TestCase):
    """Argument checks that need no server."""

    def test_key_validation(self):
        pub, sec = zmq.curve_keypair()
        with self.assertRaises(ValueError):
            Client("tcp://127.0.0.1:1", curve_server_key=pub)       # no client pair
        with self.assertRaises(ValueError):
            Client("tcp://127.0.0.1:1", curve_public_key=pub, curve_secret_key=sec)
        with self.assertRaises(ValueError):
            Client("tcp://127.0.0.1:1", curve_server_key="short",
                   curve_public_key=pub, curve_secret_key=sec)
        tmp = tempfile.mkdtemp(prefix="leadscore-pytest-")
        try:
            path = os.path.join(tmp, "k.pub")
            with open(path, "w") as f:
                f.write("# comment\n\n  %s  \n" % pub.decode())
            self.assertEqual(lc.read_key_file(path), pub.decode())
            with open(path, "w") as f:
                f.write("# only a comment\n")
            with self.assertRaises(ValueError):
                lc.read_key_file(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_error_classes(self):
        for code, cls in (("bad_request", lc.BadRequest), ("unknown_op", lc.UnknownOp),
                          ("too_large", lc.TooLarge), ("unauthorized", lc.Unauthorized),
                          ("unavailable", lc.Unavailable), ("internal", lc.Internal)):
            e = lc.error_from_reply({"ok": False, "error": {"code": code, "message": "m"}})
            self.assertIs(type(e), cls)
            self.assertEqual((e.code, e.message), (code, "m"))
        e = lc.error_from_reply({"ok": False, "error": {"code": "new_code", "message": "m"}})
        self.assertIs(type(e), LeadscoreError)
        self.assertEqual(e.code, "new_code")
        self.assertIs(type(lc.error_from_reply({"ok": False})), lc.ProtocolError)
        self.assertEqual(str(lc.TooLarge("too_large", "big")), "too_large: big")
        self.assertEqual(lc.Timeout("slow").code, "timeout")
        self.assertTrue(lc.Unavailable.retryable)
        self.assertFalse(lc.BadRequest.retryable)
        for cls, code in lc.ERROR_CLASSES.items():
            self.assertEqual(cls, code.code)
            self.assertTrue(issubclass(code, LeadscoreError))
            self.assertIs(lc.error_class(cls), code)
        self.assertIs(lc.error_class("new_code"), LeadscoreError)
        import pickle
        e = pickle.loads(pickle.dumps(lc.Unauthorized("unauthorized", "admin only")))
        self.assertIs(type(e), lc.Unauthorized)
        self.assertEqual((e.code, e.message), ("unauthorized", "admin only"))
        e = pickle.loads(pickle.dumps(lc.Timeout("slow")))
        self.assertEqual((type(e), e.code, e.message), (lc.Timeout, "timeout", "slow"))

    def test_legacy_module(self):
        """leadscore_client, the old single module, still works from the
        source directory (with /usr/bin/python3, nothing installed)."""
        code = ("import leadscore_client as lc, leadscore;"
                "assert lc.Client is leadscore.Client;"
                "assert lc.BadRequest is leadscore.BadRequest;"
                "assert lc.DEFAULT_ENDPOINT == 'tcp://127.0.0.1:5555';"
                "assert lc._error_from_reply({'ok': False, 'error': "
                "{'code': 'too_large', 'message': 'm'}}).code == 'too_large';"
                "print(leadscore.__file__)")
        env = dict(os.environ)
        env["PYTHONPATH"] = PKG_DIR
        p = subprocess.run([sys.executable, "-c", code], env=env, cwd=tempfile.gettempdir(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertTrue(p.stdout.decode().strip().endswith(
            os.path.join("leadscore", "__init__.py")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
