#!/usr/bin/python3
"""make_corpus.py -- writes the seed corpora and dictionaries in fuzz/.

The seeds are committed; rerun this only to change them:

    /usr/bin/python3 fuzz/make_corpus.py

It needs python3-msgpack (Debian package; a pyenv `python3` may lack it,
hence /usr/bin/python3).  Existing files whose names start with "crash-"
(minimised reproducers of found bugs) are kept; every other seed is
rewritten.

  corpus/request/  whole request frames: every op of PROTOCOL.md section 3,
                   ids of every type, and frames the decoder must refuse
  corpus/event/    one event map (or an array of them): every type, every
                   field, every limit just inside and just outside
  corpus/csv/      fuzz_csv inputs: one settings byte (see fuzz_csv.c), then
                   the file
  msgpack.dict     libFuzzer dictionary for the request and event harnesses
  csv.dict         libFuzzer dictionary for the CSV harness
"""
import gzip
import os
import struct
import sys

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
NOW = 1700000000000          # fuzz_check.h FUZZ_NOW_MS
MIN_TS = 946684800000        # EVENT_MIN_TS_MS
DAY = 86400000

EVENT_TYPES = ["page_view", "product_view", "search", "add_to_cart", "remove_from_cart",
               "checkout", "purchase", "refund", "review", "email_open", "email_click",
               "sms_click", "signup", "referral", "share", "support_ticket", "profile"]
EVENT_FIELDS = ["customer", "type", "ts", "event_id", "session", "product", "category",
                "order_id", "price", "value", "quantity", "discounted", "rating", "birthday"]
OPS = ["track", "score", "recommend", "profile", "alias", "forget", "model", "reload",
       "kpis", "stats", "ping"]
REQUEST_KEYS = ["op", "id", "events", "customer", "customers", "explain", "now", "k", "path",
                "from", "to"]


def pack(obj, single_float=False):
    return msgpack.packb(obj, use_bin_type=True, use_single_float=single_float)


def f64(x):
    return b"\xcb" + struct.pack(">d", x)


def f32(x):
    return b"\xca" + struct.pack(">f", x)


def fixstr(s):
    b = s.encode()
    assert len(b) < 32
    return bytes([0xa0 | len(b)]) + b


def fixmap(pairs):
    """pairs: list of (key bytes, value bytes), already packed."""
    assert len(pairs) < 16
    return bytes([0x80 | len(pairs)]) + b"".join(k + v for k, v in pairs)


def write_dir(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if not f.startswith("crash-"):
            os.remove(os.path.join(d, f))
    for fname, data in seeds.items():
        with open(os.path.join(d, fname), "wb") as out:
            out.write(data)
    print(f"{d}: {len(seeds)} seeds")


# ---------------------------------------------------------------- events

def full_event(i=0):
    return {"customer": f"c{i}", "type": "purchase", "ts": NOW - 3600000, "event_id": f"e-{i}",
            "session": "s1", "product": "sku-1", "category": "shoes/running",
            "order_id": f"o-{i}", "price": 89.9, "quantity": 2, "value": 179.8,
            "discounted": True}


def event_seeds():
    s = {}
    for t in EVENT_TYPES:
        ev = {"customer": "alice", "type": t, "ts": NOW - DAY}
        if t == "review":
            ev["rating"] = 4
        if t == "profile":
            ev["birthday"] = "02-29"
        if t in ("purchase", "refund", "add_to_cart", "remove_from_cart"):
            ev["price"] = 40.0
        s[f"type-{t}"] = pack(ev)
    s["all-fields"] = pack(full_event())
    s["review-all-fields"] = pack(dict(full_event(), type="review", rating=5, birthday="12-31"))
    s["minimal-no-ts"] = pack({"customer": "a", "type": "page_view"})
    s["float32-money"] = pack({"customer": "a", "type": "purchase", "price": 1.5, "value": 3.0},
                              single_float=True)
    s["integral-floats"] = fixmap([(fixstr("customer"), fixstr("a")), (fixstr("type"), fixstr("review")),
                                   (fixstr("ts"), f64(float(NOW))), (fixstr("rating"), f64(3.0)),
                                   (fixstr("quantity"), f32(2.0))])
    s["nan-price"] = fixmap([(fixstr("customer"), fixstr("a")), (fixstr("type"), fixstr("purchase")),
                             (fixstr("price"), f64(float("nan")))])
    s["inf-value"] = fixmap([(fixstr("customer"), fixstr("a")), (fixstr("type"), fixstr("purchase")),
                             (fixstr("value"), f64(float("inf")))])
    s["negative-zero-price"] = fixmap([(fixstr("customer"), fixstr("a")), (fixstr("type"), fixstr("purchase")),
                                       (fixstr("price"), f64(-0.0))])
    s["max-money-max-quantity"] = pack({"customer": "a", "type": "purchase", "price": 1e12,
                                        "quantity": 1000000})
    s["money-over-limit"] = pack({"customer": "a", "type": "purchase", "price": 1e12 + 1, "value": -1})
    s["quantity-zero"] = pack({"customer": "a", "type": "add_to_cart", "quantity": 0})
    s["quantity-huge-u64"] = pack({"customer": "a", "type": "add_to_cart", "quantity": 2**64 - 1})
    s["quantity-min-i64"] = pack({"customer": "a", "type": "add_to_cart", "quantity": -2**63})
    s["rating-6"] = pack({"customer": "a", "type": "review", "rating": 6})
    s["review-without-rating"] = pack({"customer": "a", "type": "review"})
    s["ts-min"] = pack({"customer": "a", "type": "page_view", "ts": MIN_TS})
    s["ts-before-2000"] = pack({"customer": "a", "type": "page_view", "ts": MIN_TS - 1})
    s["ts-one-day-ahead"] = pack({"customer": "a", "type": "page_view", "ts": NOW + DAY})
    s["ts-seconds-not-ms"] = pack({"customer": "a", "type": "page_view", "ts": 1700000000})
    s["ts-negative"] = pack({"customer": "a", "type": "page_view", "ts": -1})
    s["strings-256"] = pack({"customer": "c" * 256, "type": "search", "event_id": "e" * 256,
                             "session": "s" * 256, "product": "p" * 256, "category": "k" * 256,
                             "order_id": "o" * 256})
    s["customer-257"] = pack({"customer": "c" * 257, "type": "search"})
    s["customer-empty"] = pack({"customer": "", "type": "search"})
    s["customer-binary-bytes"] = pack({"customer": "\x00\xff\u00e9", "type": "search"})
    s["birthday-bad"] = pack({"customer": "a", "type": "profile", "birthday": "02-30"})
    s["birthday-not-digits"] = pack({"customer": "a", "type": "profile", "birthday": "0a-1b"})
    s["unknown-field"] = pack({"customer": "a", "type": "search", "colour": "red"})
    s["duplicate-field"] = fixmap([(fixstr("customer"), fixstr("a")), (fixstr("type"), fixstr("search")),
                                   (fixstr("customer"), fixstr("b"))])
    s["unknown-type"] = pack({"customer": "a", "type": "teleport"})
    s["int-key"] = fixmap([(b"\x01", fixstr("a")), (fixstr("type"), fixstr("search"))])
    s["key-with-control-chars"] = pack({"cu\x00\x1b[31mstomer" * 8: "a", "type": "search"})
    s["wrong-types"] = pack({"customer": 1, "type": "search"})
    s["discounted-not-bool"] = pack({"customer": "a", "type": "search", "discounted": 1})
    s["bin-customer"] = pack({"customer": b"alice", "type": "search"})
    s["not-a-map"] = pack(["customer", "a"])
    s["batch-array"] = pack([full_event(i) for i in range(4)] + [{"customer": "x"}, 7])
    s["nil"] = b"\xc0"
    return s


# ---------------------------------------------------------------- requests

def request_seeds():
    s = {}
    ev = full_event()
    s["op-track"] = pack({"op": "track", "id": 1, "events": [ev]})
    s["op-track-mixed"] = pack({"op": "track", "id": "batch-7", "events": [
        full_event(1),
        {"customer": "bob", "type": "review", "rating": 5, "ts": NOW},
        {"customer": "bob", "type": "review"},                        # no rating
        {"customer": "", "type": "page_view"},                        # empty customer
        {"customer": "c" * 300, "type": "page_view"},                 # too long
        {"customer": "x", "type": "nope"},
        {"customer": "x", "type": "search", "extra": 1},
        "not a map",
        {"customer": "x", "type": "profile", "birthday": "11-31"},
    ]})
    s["op-track-every-type"] = pack({"op": "track", "events": [
        dict({"customer": f"c{i}", "type": t, "event_id": f"e{i}"}, **({"rating": 3} if t == "review" else {}))
        for i, t in enumerate(EVENT_TYPES)]})
    s["op-track-empty"] = pack({"op": "track", "events": []})
    s["op-track-events-not-array"] = pack({"op": "track", "events": {"customer": "a"}})
    s["op-score"] = pack({"op": "score", "id": 2, "customer": "alice"})
    s["op-score-batch"] = pack({"op": "score", "id": [1, "x"], "customers": ["alice", "bob", "", "c" * 40],
                                "explain": True, "now": NOW})
    s["op-score-bad-types"] = pack({"op": "score", "customer": 5, "explain": "yes", "now": 1.5})
    s["op-recommend"] = pack({"op": "recommend", "customer": "alice", "k": 5, "now": NOW})
    s["op-profile"] = pack({"op": "profile", "customer": "alice", "now": float(NOW)})
    s["op-alias"] = pack({"op": "alias", "from": "anon-1", "to": "alice"})
    s["op-forget"] = pack({"op": "forget", "id": None, "customer": "alice"})
    s["op-model"] = pack({"op": "model"})
    s["op-reload"] = pack({"op": "reload", "path": "models/default.json"})
    s["op-kpis"] = pack({"op": "kpis", "from": NOW - 30 * DAY, "to": NOW})
    s["op-stats"] = pack({"op": "stats", "id": {"trace": "abc", "n": [1, 2.5, None, True]}})
    s["op-ping"] = pack({"op": "ping", "id": -12345678901})
    s["op-unknown"] = pack({"op": "teleport", "id": 3})
    s["op-missing"] = pack({"id": 4, "customer": "a"})
    s["op-not-string"] = pack({"op": 7, "id": 5})
    s["unknown-field"] = pack({"op": "ping", "colour": "red"})
    s["id-float32-nan"] = fixmap([(fixstr("op"), fixstr("ping")), (fixstr("id"), b"\xca\x7f\xc0\x00\x00")])
    s["id-ext-and-bin"] = fixmap([(fixstr("op"), fixstr("ping")),
                                  (fixstr("id"), b"\x92\xd4\x01\x02\xc4\x03abc")])
    s["non-string-key"] = fixmap([(fixstr("id"), b"\x06"), (b"\x01", fixstr("x")), (fixstr("op"), fixstr("ping"))])
    s["empty-map"] = b"\x80"
    s["not-a-map"] = pack(["op", "ping"])
    s["empty-frame"] = b""
    s["byte-c1"] = b"\xc1"
    s["truncated"] = pack({"op": "track", "events": [ev]})[:-5]
    s["trailing-bytes"] = pack({"op": "ping"}) + b"\x00"
    s["array32-4-billion"] = b"\x81\xa2id\xdd\xff\xff\xff\xff"
    s["map32-4-billion"] = b"\xdf\xff\xff\xff\xff"
    s["str32-4-billion"] = b"\x81\xa2op\xdb\xff\xff\xff\xff"
    s["nesting-16"] = b"\x82\xa2op\xa4ping\xa2id" + b"\x91" * 15 + b"\x00"
    s["nesting-17"] = b"\x82\xa2op\xa4ping\xa2id" + b"\x91" * 16 + b"\x00"
    # 16-bit and 32-bit headers for every container and string
    s["wide-headers"] = (b"\xde\x00\x03" + b"\xd9\x02op" + b"\xda\x00\x05track" +
                         b"\xdb\x00\x00\x00\x02id" + b"\xdc\x00\x01\xc0" +
                         b"\xd9\x06events" + b"\xdd\x00\x00\x00\x01" +
                         b"\xdf\x00\x00\x00\x02" + fixstr("customer") + fixstr("a") +
                         fixstr("type") + fixstr("share"))
    return s


# ---------------------------------------------------------------- csv

def opts(delim=",", ws=False, maxrec=0, gz=False, straddle=None, by_path=False, big_field=False):
    b = ",\t;|".index(delim)
    b |= 4 if ws else 0
    b |= {0: 0, 4: 1, 32: 2, 1024: 3}[maxrec] << 3
    if straddle is not None:      # fuzz_csv.c FEED_*
        assert not gz and not by_path and not big_field
        feed = 7
    elif big_field:
        assert not gz and not by_path
        feed = 2
    else:
        feed = {(False, False): 0, (False, True): 3, (True, False): 4, (True, True): 6}[(gz, by_path)]
    b |= feed << 5
    return bytes([b]) + (bytes([straddle]) if straddle is not None else b"")


def csv_seeds():
    s = {}
    events = (b"customer,type,ts,price,category\r\n"
              b"alice,product_view,1700000000,,shoes/running\r\n"
              b"alice,add_to_cart,1700000100,89.90,shoes/running\r\n"
              b"bob,purchase,2023-11-14T12:00:00Z,12.5,\"books, used\"\r\n")
    s["events-crlf"] = opts() + events
    s["events-by-path"] = opts(by_path=True) + events
    s["events-gzip"] = opts(gz=True) + events
    s["raw-gzip-file"] = opts() + gzip.compress(events, mtime=0)
    s["raw-gzip-truncated"] = opts() + gzip.compress(events, mtime=0)[:-6]
    s["quoted-everything"] = opts() + (b'"a","b ""quoted""","multi\nline\r\nfield",""\n'
                                       b'"",x,"y"\n')
    s["stray-quote-lenient"] = opts() + b'a"b,c""d\n5" screen,x\n'
    s["unterminated-quote"] = opts() + b'a,"never closed\nb,c\n'
    s["junk-after-quote"] = opts() + b'"a"x,b\n'
    s["bom-and-blank-lines"] = opts() + b"\xef\xbb\xbfid,v\n\n\n1,2\r\r\n3,4\r"
    s["lone-cr-lines"] = opts() + b"a,b\rc,d\re,f"
    s["empty-fields"] = opts() + b",\n,,\na,\n,b\n"
    s["nul-bytes"] = opts() + b"a\x00b,\x00\n\"\x00\",c\n"
    s["tab-delimited"] = opts("\t") + b"id\tname\n1\t\"tab\there\"\n2\t\n"
    s["semicolon"] = opts(";") + b"a;b;c\n1,5;2,5;3\n"
    s["pipe"] = opts("|") + b"a|b\n\"|\"|c\n"
    s["whitespace-cdnow"] = opts(ws=True) + (b" customer_id  date number_of_cds  dollar_value\n"
                                             b" 00001 19970101  1   11.77\n"
                                             b"\t00002 19970112  5   77.00  \n   \n")
    s["whitespace-quoted-empty"] = opts(ws=True) + b'a "" "b c"  d\n"x"\ty'
    s["max-record-4"] = opts(maxrec=4) + b"a\nab\nabc,d\n"
    s["max-record-32"] = opts(maxrec=32) + b"x,y\n" + b"z" * 40 + b"\n"
    s["max-record-1024-quoted"] = opts(maxrec=1024) + b'"' + b"q" * 1100 + b'"\n'
    s["many-fields"] = opts() + b"," * 200 + b"\n"
    s["straddle-quoted"] = opts(straddle=10) + b'a,"0123456789"",x\ny",z\r\nnext,row\n'
    s["straddle-crlf"] = opts(straddle=4) + b"abc\r\ndef\r\n"
    s["straddle-whitespace"] = opts(ws=True, straddle=3) + b"  a   b  \n c\n"
    s["straddle-lone-cr"] = opts(straddle=7) + b"x,y\r\"1\"\r2\r"
    s["big-field"] = opts(big_field=True) + b',"q""",' + b"," * 100 + b"\nnext,row\n"
    s["big-field-whitespace"] = opts(ws=True, big_field=True) + b"  y\n z\n"
    s["gzip-by-path"] = opts(gz=True, by_path=True) + b"x;y\n1;2\n"
    s["lone-quote"] = opts() + b'"\n'
    s["empty"] = opts()
    return s


# ---------------------------------------------------------------- dictionaries

def dict_line(name, data):
    esc = "".join(chr(c) if 0x20 <= c < 0x7f and c not in (0x22, 0x5c) else f"\\x{c:02x}" for c in data)
    return f'{name}="{esc}"\n'


def write_dicts():
    lines = ["# libFuzzer dictionary for fuzz_request and fuzz_event (made by make_corpus.py)\n"]
    words = sorted(set(REQUEST_KEYS + EVENT_FIELDS + EVENT_TYPES + OPS))
    for w in words:
        lines.append(dict_line(f"s_{w}", fixstr(w)))
    for name, data in [("map16", b"\xde\x00"), ("map32", b"\xdf\x00\x00\x00"), ("arr16", b"\xdc\x00"),
                       ("arr32", b"\xdd\x00\x00\x00"), ("arr32_huge", b"\xdd\xff\xff\xff\xff"),
                       ("str8", b"\xd9"), ("str16", b"\xda\x01\x00"), ("str32", b"\xdb\x00\x00\x01\x00"),
                       ("bin8", b"\xc4"), ("ext8", b"\xc7\x01"), ("fixext1", b"\xd4\x00"),
                       ("f64_nan", f64(float("nan"))), ("f64_inf", f64(float("inf"))),
                       ("f64_negzero", f64(-0.0)), ("f64_1e12", f64(1e12)), ("f32_2", f32(2.0)),
                       ("f64_now", f64(float(NOW))), ("u64_now", b"\xcf" + struct.pack(">Q", NOW)),
                       ("u64_min_ts", b"\xcf" + struct.pack(">Q", MIN_TS)),
                       ("u64_max", b"\xcf" + b"\xff" * 8), ("i64_min", b"\xd3\x80" + b"\x00" * 7),
                       ("u32_1e6", b"\xce" + struct.pack(">I", 1000000)),
                       ("birthday", fixstr("02-29")), ("never_used", b"\xc1")]:
        lines.append(dict_line(name, data))
    with open(os.path.join(HERE, "msgpack.dict"), "w") as out:
        out.writelines(lines)

    lines = ["# libFuzzer dictionary for fuzz_csv (made by make_corpus.py)\n"]
    for name, data in [("quote", b'"'), ("quote2", b'""'), ("crlf", b"\r\n"), ("cr", b"\r"),
                       ("bom", b"\xef\xbb\xbf"), ("gzip_magic", b"\x1f\x8b\x08\x00"),
                       ("quoted_empty", b'"",'), ("quoted_nl", b'"\n"'), ("tab", b"\t"),
                       ("header", b"customer,type,ts")]:
        lines.append(dict_line(name, data))
    with open(os.path.join(HERE, "csv.dict"), "w") as out:
        out.writelines(lines)


if __name__ == "__main__":
    write_dir("request", request_seeds())
    write_dir("event", event_seeds())
    write_dir("csv", csv_seeds())
    write_dicts()
    sys.exit(0)
