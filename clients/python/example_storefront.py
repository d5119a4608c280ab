#!/usr/bin/python3
"""A storefront page talking to leadscore.

An anonymous visitor browses running shoes and puts a pair in the cart; the
page asks ``score`` and ``recommend`` and picks the content block to render
from the top segment; the visitor logs in (``alias`` anonymous id -> customer
id) and buys.

    /usr/bin/python3 clients/python/example_storefront.py --connect tcp://127.0.0.1:5555

(Debian's /usr/bin/python3 with python3-zmq and python3-msgpack; the
``leadscore`` package installed, or found next to this file.)
"""

import argparse
import os
import sys
import uuid

# Run as a script, this file's directory comes first on sys.path, so the
# ``leadscore`` package next to it is used; elsewhere, the installed one.
from leadscore import Client, LeadscoreError, Timeout, UnknownOp

# What the page shows for each content segment of the model's catalogue.
CONTENT_BLOCKS = {
    "running": "Running shoes: new-season road runners",
    "trail-running": "Trail shoes: grip for the mountains",
    "footwear": "Shoes for every day",
    "outerwear": "Jackets for the weather ahead",
    "apparel": "Clothing picks",
    "audio": "Headphones and speakers",
    "electronics": "Gadgets",
    "kitchen": "Kitchen essentials",
    "home-living": "Home and living",
    "sports": "Gear for your sport",
    "beauty": "Beauty favourites",
    "kids-toys": "Toys",
    "books": "Books to read next",
    "welcome-series": "Welcome! Getting started with your first order",
    "deals": "Today's deals",
    "premium": "Premium collection",
    "new-arrivals": "New arrivals for you",
    "service-recovery": "We're sorry - here is how we make it right",
    "referral-programme": "Invite a friend, both get 10% off",
    "bestsellers": "Bestsellers",
}

# What the tier adds to the block.
TIER_HOOK = {
    "hot": "with a free-shipping nudge (ready to buy: don't distract, help close)",
    "warm": "with reviews and social proof (interested: build confidence)",
    "cold": "as inspiration only (early: no hard sell)",
}


def new_event(customer, etype, session, **fields):
    """An event with an event_id, so a retried track never double counts."""
    ev = {"customer": customer, "type": etype, "session": session,
          "event_id": "ev-" + uuid.uuid4().hex}
    ev.update(fields)
    return ev


def render(ls, customer, heading):
    """Ask score + recommend and decide which content block to show."""
    sc = ls.score(customer, explain=True)
    rec = ls.recommend(customer, k=3)
    segments = rec.get("segments") or []
    print("%s" % heading)
    print("  score %.3f (%d/100), tier %s, type %s, phase %s, model %s"
          % (sc["score"], sc["score_100"], sc["tier"], sc["customer_type"],
             sc["phase"], sc.get("model")))
    top_features = [e for e in sc.get("explain", []) if e["contribution"]][:3]
    if top_features:
        print("  readiness driven by: " + ", ".join(
            "%s=%.2f (%+.2f)" % (e["feature"], e["value"], e["contribution"])
            for e in top_features))
    if segments:
        top = segments[0]
        block = CONTENT_BLOCKS.get(top["segment"], "Segment '%s'" % top["segment"])
        print("  RENDER: \"%s\" %s" % (block, TIER_HOOK.get(sc["tier"], "")))
        print("  because: top segment %r (weight %.2f): %s"
              % (top["segment"], top["weight"], top["reason"]))
        for other in segments[1:]:
            print("  runner-up: %r (weight %.2f): %s"
                  % (other["segment"], other["weight"], other["reason"]))
    else:
        print("  RENDER: the default homepage (no segment recommended)")
    if sc.get("actions"):
        print("  triggers to fire: " + ", ".join(sc["actions"]))
    return sc, rec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connect", default=os.environ.get(
        "LEADSCORE_CONNECT", "tcp://127.0.0.1:5555"),
        help="request endpoint of leadscore serve (default %(default)s)")
    ap.add_argument("--timeout", type=float, default=2.0,
                    help="seconds per attempt (default %(default)s)")
    args = ap.parse_args(argv)

    run = uuid.uuid4().hex[:8]
    visitor = "anon-" + run            # cookie id before login
    customer = "cust-" + run           # account id after login
    session = "s-" + run

    try:
        with Client(args.connect, timeout=args.timeout) as ls:
            pong = ls.ping()
            print("connected to leadscore %s at %s" % (pong.get("version"), args.connect))

            # 1. The anonymous visitor browses.
            browse = [
                new_event(visitor, "page_view", session, category="shoes"),
                new_event(visitor, "product_view", session, product="SKU-RUN-1",
                          category="shoes/running/road", price=89.90),
                new_event(visitor, "product_view", session, product="SKU-RUN-2",
                          category="shoes/running/road", price=119.00),
                new_event(visitor, "add_to_cart", session, product="SKU-RUN-1",
                          category="shoes/running/road", price=89.90),
            ]
            r = ls.track(browse)
            print("tracked %d browsing events for %s (%d duplicate, %d rejected)"
                  % (r["accepted"], visitor, r["duplicates"], len(r["rejected"])))

            # 2. The next page asks what to show.
            render(ls, visitor, "\npage for anonymous visitor %s:" % visitor)

            # 3. The visitor logs in: stitch the anonymous history to the account.
            print("\nvisitor logs in as %s" % customer)
            buyer = customer
            try:
                merged = ls.alias(visitor, customer)
                print("  alias %s -> %s: merged=%s" % (visitor, customer,
                                                       merged.get("merged")))
            except UnknownOp:
                print("  this server does not implement alias (unknown_op): the "
                      "browsing history stays under %s; continuing" % visitor)

            # 4. ... and buys.
            order = "order-" + run
            r = ls.track([
                new_event(buyer, "checkout", session, category="shoes/running/road",
                          price=89.90),
                new_event(buyer, "purchase", session, product="SKU-RUN-1",
                          category="shoes/running/road", price=89.90, quantity=1,
                          order_id=order, value=89.90),
            ])
            print("  order %s tracked: %d accepted" % (order, r["accepted"]))

            sc, _ = render(ls, buyer, "\npage for customer %s after the purchase:" % buyer)
            prof = ls.profile(buyer)
            f = prof["features"]
            print("  profile: %d product views, %d cart adds, %d purchases"
                  % (f.get("product_view_count", 0), f.get("add_to_cart_count", 0),
                     f.get("purchase_count", 0)))
    except Timeout as e:
        print("leadscore did not answer: %s" % e, file=sys.stderr)
        return 1
    except LeadscoreError as e:
        print("leadscore refused a request: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
