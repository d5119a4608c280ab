#!/usr/bin/python3
"""Tests of leadscore.AsyncClient against a real `leadscore serve`: round
trips, many requests in flight matched by id, typed errors, timeouts."""

import asyncio
import os
import shutil
import tempfile
import time
import unittest

from support import Server, ServerTestCase, ev, free_port, setUpModule, uid

import leadscore
from leadscore import (AsyncClient, BadRequest, LeadscoreError, Timeout,
                       TooLarge, UnknownOp)

__all__ = ["setUpModule"]


def run(coro, timeout=30.0):
    """Run a coroutine on a fresh loop, bounded."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


class TestAsyncOps(ServerTestCase):

    def client(self, **kw):
        kw.setdefault("timeout", 2.0)
        kw.setdefault("retries", 1)
        return AsyncClient(self.server.endpoint, **kw)

    def test_round_trips(self):
        c = uid("async")
        now = int(time.time() * 1000)

        async def go():
            async with self.client() as ls:
                self.assertIs((await ls.ping())["pong"], True)
                self.assertEqual(ls.last_attempts, 1)
                before = await ls.score(c)
                self.assertIs(before["known"], False)
                r = await ls.track([ev(c, "product_view", category="shoes/running/road", ts=now - 2000),
                                    ev(c, "add_to_cart", price=50.0, ts=now - 1000)])
                self.assertEqual(r, {"accepted": 2, "duplicates": 0, "rejected": []})
                s = await ls.score(c, explain=True, now=now)
                self.assertIs(s["known"], True)
                self.assertEqual(s["customer"], c)
                self.assertIn("explain", s)
                self.assertNotIn("ok", s)
                self.assertNotIn("id", s)
                self.assertIs((await ls.score(c, now=now - 5000))["known"], False)
                p = await ls.profile(c)
                self.assertEqual(p["features"]["add_to_cart_count"], 1)
                self.assertIs((await ls.profile(c, now=now - 5000))["known"], False)
                rec = await ls.recommend(c, k=1, now=now)
                self.assertEqual(len(rec["segments"]), 1)
                m = await ls.model()
                self.assertIn("version", m)
                self.assertEqual((await ls.reload())["version"], m["version"])
                self.assertTrue(await ls.stats())
                self.assertIsInstance(await ls.kpis(from_ms=now - 86400000, to_ms=now), dict)
                self.assertIs((await ls.call("ping"))["pong"], True)
                anon = uid("anon")
                await ls.track(ev(anon, "page_view"))       # one map: a batch of one
                self.assertIs((await ls.alias(anon, c))["merged"], True)
                self.assertEqual((await ls.profile(c))["features"]["page_view_count"], 1)
                self.assertIs((await ls.forget(c))["deleted"], True)
                self.assertIs((await ls.profile(c))["known"], False)
                self.assertEqual(ls.in_flight, 0)
            self.assertTrue(ls.closed)
            with self.assertRaises(RuntimeError):
                await ls.ping()
        run(go())

    def test_many_in_flight_matched_by_id(self):
        cs = [uid("par") for _ in range(40)]

        async def go():
            async with self.client() as ls:
                await ls.track([ev(x, "page_view") for x in cs[::2]])
                # reads answered by the server loop or handed to workers, batch
                # scores and tracks through workers: replies come out of order
                coros = []
                for i, x in enumerate(cs):
                    coros.append(ls.score(x))
                    coros.append(ls.profile(x))
                    if i % 5 == 0:
                        coros.append(ls.score_many([x, cs[0]]))
                        # into an already-known customer: a read racing a write
                        # to the same customer may see it or not (both are right)
                        coros.append(ls.track([ev(cs[0], "search")]))
                tasks = [asyncio.ensure_future(co) for co in coros]
                await asyncio.sleep(0)
                self.assertGreater(ls.in_flight, 1)
                results = await asyncio.gather(*tasks)
                self.assertEqual(ls.in_flight, 0)
                k = 0
                for i, x in enumerate(cs):
                    s, p = results[k], results[k + 1]
                    k += 2
                    self.assertEqual((s["customer"], p["customer"]), (x, x))
                    self.assertEqual(s["known"], i % 2 == 0)
                    if i % 5 == 0:
                        many, tr = results[k], results[k + 1]
                        k += 2
                        self.assertEqual([r["customer"] for r in many], [x, cs[0]])
                        self.assertEqual(tr["accepted"], 1)
                self.assertEqual(k, len(results))
                # pipelined score_many: several requests at once, same order
                ask = list(reversed(cs))
                res = await ls.score_many(ask, batch_size=3)
                self.assertEqual([r["customer"] for r in res], ask)
                self.assertEqual(await ls.score_many([]), [])
                self.assertEqual(ls.discarded_replies, 0)
        run(go())

    def test_typed_errors(self):
        async def go():
            async with self.client() as ls:
                with self.assertRaises(BadRequest) as cm:
                    await ls.score(12345)
                self.assertEqual(cm.exception.code, "bad_request")
                self.assertTrue(cm.exception.message)
                self.assertIsInstance(cm.exception, LeadscoreError)
                with self.assertRaises(UnknownOp) as cm:
                    await ls.call("no_such_op")
                self.assertEqual(cm.exception.code, "unknown_op")
                with self.assertRaises(TooLarge) as cm:
                    await ls.score_many([uid("c") for _ in range(1001)], batch_size=2000)
                self.assertEqual(cm.exception.code, "too_large")
                with self.assertRaises(TooLarge):       # no id in the reply: one in flight
                    await ls.call("ping", {"pad": "x" * (1 << 20)})
                self.assertIs((await ls.ping())["pong"], True)

                # an id-less reply with others in flight goes to the big one
                big = asyncio.ensure_future(ls.call("ping", {"pad": "x" * (1 << 20)}))
                small = [asyncio.ensure_future(ls.score(uid("s"))) for _ in range(5)]
                out = await asyncio.gather(big, *small, return_exceptions=True)
                self.assertIsInstance(out[0], TooLarge)
                for r in out[1:]:
                    self.assertIsInstance(r, dict, r)

                # one failing request of a pipelined score_many fails the
                # call; the other replies are discarded when they come
                names = ["a", 5] + ["late-%d" % i for i in range(100)]
                with self.assertRaises(BadRequest):
                    await ls.score_many(names, batch_size=1)
                self.assertEqual(ls.in_flight, 0)
                await asyncio.sleep(0.2)
                self.assertEqual((await ls.score("zed"))["customer"], "zed")
        run(go())


class TestAsyncTimeouts(unittest.TestCase):

    def test_dead_endpoint(self):
        ep = "tcp://127.0.0.1:%d" % free_port()

        async def go():
            async with AsyncClient(ep, timeout=0.2, retries=2) as ls:
                t0 = time.monotonic()
                with self.assertRaises(Timeout) as cm:
                    await ls.ping()
                took = time.monotonic() - t0
                self.assertEqual(ls.last_attempts, 3)
                self.assertGreaterEqual(took, 0.55)
                self.assertLess(took, 1.5)
                self.assertEqual(cm.exception.code, "timeout")
                self.assertIsInstance(cm.exception, LeadscoreError)

                with self.assertRaises(Timeout):        # no event ids: once
                    await ls.track([{"customer": "x", "type": "page_view"}])
                self.assertEqual(ls.last_attempts, 1)
                with self.assertRaises(Timeout):        # event ids: retried
                    await ls.track([ev("x", "page_view")])
                self.assertEqual(ls.last_attempts, 3)
                with self.assertRaises(Timeout):        # never repeated
                    await ls.alias("a", "b")
                self.assertEqual(ls.last_attempts, 1)

                # several at once time out together, each on its own clock
                t0 = time.monotonic()
                out = await asyncio.gather(*(ls.score("c%d" % i) for i in range(5)),
                                           return_exceptions=True)
                self.assertTrue(all(isinstance(e, Timeout) for e in out), out)
                self.assertLess(time.monotonic() - t0, 1.5)
                self.assertEqual(ls.in_flight, 0)
        run(go())

    def test_retry_after_restart(self):
        tmp = tempfile.mkdtemp(prefix="leadscore-pytest-")
        srv = Server(os.path.join(tmp, "data")).start()
        again = Server(srv.data_dir, bind=srv.endpoint, pull=srv.pull_endpoint)
        c = uid("asurvivor")

        async def go():
            async with AsyncClient(srv.endpoint, timeout=0.4, retries=6) as ls:
                self.assertEqual((await ls.track(ev(c, "purchase", price=5.0)))["accepted"], 1)
                self.assertEqual(srv.stop(), 0)

                async def restart():
                    await asyncio.sleep(0.7)
                    await asyncio.get_running_loop().run_in_executor(None, again.start)
                back = asyncio.ensure_future(restart())
                t0 = time.monotonic()
                # reads in flight while the server is down: retried until it is back
                res = await asyncio.gather(*(ls.score(c) for _ in range(3)))
                took = time.monotonic() - t0
                await back
                self.assertEqual([r["known"] for r in res], [True] * 3)
                self.assertGreaterEqual(ls.last_attempts, 2)
                self.assertLess(took, 0.4 * 7 + 0.5)
        try:
            run(go())
            self.assertEqual(again.stop(), 0)
        finally:
            srv.kill()
            again.kill()
            shutil.rmtree(tmp, ignore_errors=True)

    def test_arguments(self):
        with self.assertRaises(ValueError):
            AsyncClient("tcp://127.0.0.1:1", timeout=0)
        with self.assertRaises(ValueError):
            AsyncClient("tcp://127.0.0.1:1", retries=-1)
        self.assertIn("AsyncClient(", repr(AsyncClient("tcp://127.0.0.1:1")))
        self.assertIs(leadscore.AsyncClient, AsyncClient)


if __name__ == "__main__":
    unittest.main(verbosity=2)
