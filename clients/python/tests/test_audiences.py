#!/usr/bin/python3
"""Audiences and the trigger outbox from Python (Client and AsyncClient)
against a real `leadscore serve`: audience_put / list / members (paged and
iterated) / delete, a bad rule raising BadRequest with its column, triggers
with from (exclusive), limit and wait_ms, and follow_triggers seeing an
abandoned cart fire while it waits (the server runs with
--abandoned-cart-after 1s)."""

import asyncio
import threading
import time
import unittest
import warnings

from support import ServerTestCase, ev, setUpModule, uid, wait_until

import leadscore._common as lc_common
from leadscore import AsyncClient, BadRequest, Client, LeadscoreError

__all__ = ["setUpModule"]

#: what every trigger carries (abandoned_cart adds value)
TRIGGER_FIELDS = {"seq", "id", "customer", "kind", "name", "at", "score", "tier",
                  "phase", "customer_type", "clv", "segment"}


def run(coro, timeout=60.0):
    """Run a coroutine on a fresh loop, bounded."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def buy(ls, customer, orders):
    """Track `orders` separate orders for customer."""
    ls.track([ev(customer, "purchase", value=10.0, order_id=uid("o"))
              for _ in range(orders)])


class TestAudiences(ServerTestCase):
    """The audience ops; rules pick customers by an order count no other
    test of this class makes."""

    server_extra = ("--audience-refresh", "1s")

    def wait_ready(self, ls, name, timeout=15.0):
        def ready():
            for a in ls.audience_list():
                if a["name"] == name:
                    return a if a["ready"] else None
            return None
        a = wait_until(ready, timeout=timeout, step=0.1)
        self.assertTrue(a, "audience %s not ready within %gs" % (name, timeout))
        return a

    def test_put_list_members_delete(self):
        name = uid("trio").replace("-", "_")
        members = sorted(uid("m3") for _ in range(5))
        for m in members:
            buy(self.ls, m, 3)
        buy(self.ls, uid("m2"), 2)                     # not a member
        r = self.ls.audience_put(name, "purchase_count == 3")
        # a small store: the server answers once the first pass is done
        self.assertEqual(r, {"created": True, "changed": True, "ready": True})
        self.assertEqual(self.ls.audience_members(name)["members"], members)
        a = self.wait_ready(self.ls, name)
        self.assertEqual(a["rule"], "purchase_count == 3")
        self.assertEqual(a["members"], 5)
        self.assertIsInstance(a["created"], int)
        self.assertEqual(set(a), {"name", "rule", "members", "ready", "created"})

        # one page, then paged by hand with a cursor, then iterated
        page = self.ls.audience_members(name)
        self.assertEqual(page["members"], members)
        self.assertIs(page["ready"], True)
        self.assertEqual(page["name"], name)
        self.assertIsNone(page["cursor"])
        first = self.ls.audience_members(name, limit=2)
        self.assertEqual(first["members"], members[:2])
        self.assertIsNotNone(first["cursor"])
        second = self.ls.audience_members(name, limit=2, cursor=first["cursor"])
        self.assertEqual(second["members"], members[2:4])
        self.assertEqual(list(self.ls.iter_audience_members(name, page=2)), members)
        self.assertEqual(list(self.ls.iter_audience_members(name)), members)
        with self.assertRaises(ValueError):
            list(self.ls.iter_audience_members(name, page=0))

        # a new member enters as its events arrive
        late = "zzz-" + uid("late")
        buy(self.ls, late, 3)
        self.assertTrue(wait_until(
            lambda: late in list(self.ls.iter_audience_members(name, page=3)), timeout=10.0))

        # the same rule again changes nothing; delete, then delete again
        self.assertEqual(self.ls.audience_put(name, "purchase_count  ==  3"),
                         {"created": False, "changed": False, "ready": True})
        r = self.ls.audience_put(name, "purchase_count >= 3")
        self.assertEqual((r["created"], r["changed"]), (False, True))
        self.assertEqual(self.ls.audience_delete(name), {"deleted": True})
        self.assertEqual(self.ls.audience_delete(name), {"deleted": False})
        self.assertNotIn(name, [x["name"] for x in self.ls.audience_list()])
        with self.assertRaises(BadRequest):
            self.ls.audience_members(name)

    def test_bad_rule_and_name(self):
        with self.assertRaises(BadRequest) as cm:
            self.ls.audience_put("bad_rule", "score >>= 0.5")
        self.assertEqual(cm.exception.code, "bad_request")
        self.assertIn("bad rule", cm.exception.message)
        self.assertIn("column 8", cm.exception.message)
        with self.assertRaises(BadRequest) as cm:
            self.ls.audience_put("bad_field", "scor > 0.5")
        self.assertIn("unknown field", cm.exception.message)
        with self.assertRaises(BadRequest):
            self.ls.audience_put("no spaces", "score > 0.5")
        with self.assertRaises(BadRequest):
            self.ls.audience_members("no_such_audience")
        self.assertNotIn("bad_rule", [x["name"] for x in self.ls.audience_list()])

    def test_async(self):
        name = uid("async").replace("-", "_")
        members = sorted(uid("a4") for _ in range(3))
        for m in members:
            buy(self.ls, m, 4)

        async def go():
            async with AsyncClient(self.server.endpoint, timeout=2.0, retries=1) as ls:
                r = await ls.audience_put(name, "purchase_count == 4")
                self.assertEqual((r["created"], r["changed"]), (True, True))
                self.assertIsInstance(r["ready"], bool)
                with self.assertRaises(BadRequest):
                    await ls.audience_put(name, "purchase_count ==")
                deadline = time.monotonic() + 15
                while True:
                    found = [a for a in await ls.audience_list() if a["name"] == name]
                    if found and found[0]["ready"]:
                        break
                    self.assertLess(time.monotonic(), deadline, "not ready")
                    await asyncio.sleep(0.1)
                self.assertEqual(found[0]["members"], 3)
                page = await ls.audience_members(name, limit=2)
                self.assertEqual(page["members"], members[:2])
                got = [m async for m in ls.iter_audience_members(name, page=1)]
                self.assertEqual(got, members)
                self.assertEqual(await ls.audience_delete(name), {"deleted": True})
        run(go())


class TestTriggers(ServerTestCase):
    """The trigger outbox; carts are abandoned after 1 s of silence."""

    server_extra = ("--abandoned-cart-after", "1s", "--audience-refresh", "1s")

    def last_seq(self):
        return self.ls.triggers(0, limit=1)["last"]

    def cart_trigger(self, customer, after, timeout=15.0):
        """The abandoned_cart trigger of customer, after seq `after`."""
        def find():
            page = self.ls.triggers(after, limit=10000)
            for t in page["triggers"]:
                if t["customer"] == customer and t["name"] == "abandoned_cart":
                    return t
            return None
        t = wait_until(find, timeout=timeout, step=0.1)
        self.assertTrue(t, "no abandoned_cart trigger for %s within %gs" % (customer, timeout))
        return t

    def test_triggers_page_from_and_limit(self):
        before = self.last_seq()
        c = uid("cart")
        self.ls.track([ev(c, "add_to_cart", price=42.5, category="shoes/running")])
        t = self.cart_trigger(c, before)
        self.assertEqual(set(t), TRIGGER_FIELDS | {"value"})
        self.assertEqual((t["kind"], t["name"]), ("moment", "abandoned_cart"))
        self.assertAlmostEqual(t["value"], 42.5, places=3)
        self.assertGreater(t["seq"], before)
        self.assertTrue(t["id"].endswith("-%d" % t["seq"]))
        self.assertIsInstance(t["at"], int)

        page = self.ls.triggers(before)
        self.assertEqual(page["next"], page["triggers"][-1]["seq"])
        self.assertGreaterEqual(page["last"], t["seq"])
        self.assertGreaterEqual(page["first"], 1)
        seqs = [x["seq"] for x in page["triggers"]]
        self.assertEqual(seqs, sorted(seqs))
        self.assertTrue(all(s > before for s in seqs))
        # from is exclusive
        after = self.ls.triggers(t["seq"])
        self.assertNotIn(t["seq"], [x["seq"] for x in after["triggers"]])
        self.assertEqual(self.ls.triggers(t["seq"] - 1, limit=1)["triggers"][0]["seq"], t["seq"])
        # nothing new: next stays where it was; with wait_ms the server holds the request
        tail = self.ls.triggers(page["last"])
        self.assertEqual((tail["triggers"], tail["next"]), ([], page["last"]))
        start = time.monotonic()
        held = self.ls.triggers(page["last"] + 1000, wait_ms=400)
        self.assertGreaterEqual(time.monotonic() - start, 0.35)
        self.assertEqual(held["triggers"], [])
        with self.assertRaises(BadRequest):
            self.ls.triggers(-1)
        with self.assertRaises(BadRequest):
            self.ls.triggers(0, limit=0)

    def test_follow_triggers_sees_an_abandoned_cart(self):
        start = self.last_seq()
        c = uid("follow")

        def later():
            time.sleep(0.3)                   # after the generator is waiting
            with Client(self.server.endpoint, timeout=2.0) as other:
                other.track([ev(c, "add_to_cart", price=19.0)])
        threading.Thread(target=later, daemon=True).start()
        deadline = time.monotonic() + 20
        seen = []
        for t in self.ls.follow_triggers(start, wait_ms=1000):
            seen.append(t)
            if t["customer"] == c or time.monotonic() > deadline:
                break
        self.assertEqual(seen[-1]["customer"], c)
        self.assertEqual(seen[-1]["name"], "abandoned_cart")
        seqs = [t["seq"] for t in seen]
        self.assertEqual(seqs, sorted(set(seqs)))
        self.assertTrue(all(s > start for s in seqs))

    def test_gap_warnings(self):
        # this server never pruned its outbox: reading from 0 warns of nothing
        before = self.last_seq()
        c = uid("gap")
        self.ls.track([ev(c, "add_to_cart", price=1.0)])
        self.cart_trigger(c, before)
        self.assertEqual(self.ls.triggers(0)["first"], 1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gen = self.ls.follow_triggers(0, wait_ms=200)
            self.assertEqual(next(gen)["seq"], 1)
            gen.close()
        self.assertFalse([w for w in caught if "left the outbox" in str(w.message)])
        # what a consumer is told when the oldest trigger held is past its seq
        self.assertIsNone(lc_common.missed_triggers(3, {"first": 4}))
        self.assertIsNone(lc_common.missed_triggers(3, {"first": 0}))
        self.assertIn("triggers 4 to 9 left the outbox",
                      lc_common.missed_triggers(3, {"first": 10}))

    def test_async_triggers_and_follow(self):
        start = self.last_seq()
        c = uid("afollow")

        async def go():
            async with AsyncClient(self.server.endpoint, timeout=2.0, retries=1) as ls:
                page = await ls.triggers(start, limit=5)
                self.assertIn("next", page)

                async def later():
                    await asyncio.sleep(0.3)
                    await ls.track([ev(c, "add_to_cart", price=7.0)])
                task = asyncio.ensure_future(later())
                seen = None
                agen = ls.follow_triggers(start, wait_ms=1000)
                try:
                    async for t in agen:
                        if t["customer"] == c:
                            seen = t
                            break
                finally:
                    await agen.aclose()
                await task
                self.assertEqual(seen["name"], "abandoned_cart")
                again = await ls.triggers(seen["seq"] - 1, limit=1)
                self.assertEqual(again["triggers"][0]["id"], seen["id"])
        run(go(), timeout=30.0)

    def test_errors_are_typed(self):
        with self.assertRaises(LeadscoreError) as cm:
            self.ls.triggers(0, wait_ms=60001)
        self.assertEqual(cm.exception.code, "bad_request")


if __name__ == "__main__":
    unittest.main(verbosity=2)
