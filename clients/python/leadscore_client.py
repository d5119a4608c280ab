"""Python client for the leadscore service.

Needs only Debian's ``python3-zmq`` and ``python3-msgpack``
(``apt-get install python3-zmq python3-msgpack``; run with ``/usr/bin/python3``).

The wire contract is ``shared/PROTOCOL.md``: one msgpack map per request and
reply on a ZeroMQ ROUTER socket, an ``id`` echoed in every reply, ``ok`` or
``error {code, message}``.

    from leadscore_client import Client

    with Client("tcp://127.0.0.1:5555") as ls:
        ls.track([{"customer": "alice", "type": "add_to_cart",
                   "price": 40.0, "event_id": "e-1"}])
        print(ls.score("alice")["score"])

A :class:`Client` is not thread-safe (ZeroMQ sockets are not): use one per
thread.
"""

import datetime
import itertools
import time

import msgpack
import zmq
from zmq.utils import z85

__all__ = [
    "Client", "Pusher",
    "LeadscoreError", "BadRequest", "UnknownOp", "TooLarge", "Unauthorized",
    "Unavailable", "Internal", "Timeout", "ProtocolError",
    "read_key_file",
]

__version__ = "0.1.0"

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
DEFAULT_PULL_ENDPOINT = "tcp://127.0.0.1:5556"


# --------------------------------------------------------------------------
# Errors


class LeadscoreError(Exception):
    """A request failed.  ``code`` is the wire error code (``bad_request``,
    ``unknown_op``, ...; ``timeout`` / ``protocol`` for failures detected by
    the client), ``message`` the server's explanation."""

    code = None

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


class BadRequest(LeadscoreError):
    """``bad_request``: not msgpack, not a map, a missing or ill-typed field."""
    code = "bad_request"


class UnknownOp(LeadscoreError):
    """``unknown_op``: the server does not implement this op."""
    code = "unknown_op"


class TooLarge(LeadscoreError):
    """``too_large``: frame, batch, customer list or string over a limit."""
    code = "too_large"


class Unauthorized(LeadscoreError):
    """``unauthorized``: the client key may not use this op (admin ops)."""
    code = "unauthorized"


class Unavailable(LeadscoreError):
    """``unavailable``: shutting down, store full, read-only."""
    code = "unavailable"


class Internal(LeadscoreError):
    """``internal``: the server failed; the request may be retried later."""
    code = "internal"


class Timeout(LeadscoreError):
    """No reply in time (after every allowed attempt)."""
    code = "timeout"

    def __init__(self, message):
        super().__init__("timeout", message)


class ProtocolError(LeadscoreError):
    """The server's reply broke the wire contract (not a msgpack map, ...)."""
    code = "protocol"

    def __init__(self, message):
        super().__init__("protocol", message)


_ERRORS = {cls.code: cls for cls in
           (BadRequest, UnknownOp, TooLarge, Unauthorized, Unavailable, Internal)}


def _error_from_reply(reply):
    err = reply.get("error")
    if not isinstance(err, dict):
        return ProtocolError("reply has ok=%r and no error map: %r"
                             % (reply.get("ok"), reply))
    code = err.get("code")
    message = err.get("message", "")
    cls = _ERRORS.get(code)
    if cls is None:
        # A code added to the contract after this client: keep it visible.
        return LeadscoreError(str(code), str(message))
    return cls(code, message)


# --------------------------------------------------------------------------
# CurveZMQ keys


def read_key_file(path):
    """Return the Z85 key held in a file written by ``leadscore keygen``
    (``PREFIX.pub`` or ``PREFIX.key``): the first line that is neither blank
    nor a ``#`` comment."""
    with open(path, "r", encoding="ascii") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                _check_key(line, path)
                return line
    raise ValueError("%s: no key in the file (only blank or # lines)" % path)


def _check_key(key, what):
    """Validate a key: Z85 text (40 characters) or 32 raw bytes.  Returns it
    as bytes, which is what libzmq takes."""
    if isinstance(key, str):
        key = key.encode("ascii")
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError("%s: a CurveZMQ key must be Z85 text or 32 bytes" % what)
    key = bytes(key)
    if len(key) == 40:
        try:
            z85.decode(key)
        except Exception:
            raise ValueError("%s: not a valid Z85 key" % what) from None
        return key
    if len(key) == 32:
        return key
    raise ValueError("%s: a CurveZMQ key is 40 characters of Z85 text "
                     "(or 32 raw bytes), got %d" % (what, len(key)))


def _curve_options(server_key, public_key, secret_key):
    """Check the three keys; return None (plain) or a (server, public, secret)
    tuple of bytes."""
    if server_key is None:
        if public_key is not None or secret_key is not None:
            raise ValueError("curve_public_key/curve_secret_key need "
                             "curve_server_key (the server's public key)")
        return None
    if public_key is None or secret_key is None:
        raise ValueError("CurveZMQ needs the client's own key pair too "
                         "(curve_public_key and curve_secret_key, e.g. from "
                         "`leadscore keygen`): the server answers only "
                         "listed client keys")
    if not zmq.has("curve"):
        raise RuntimeError("this libzmq was built without CurveZMQ support")
    return (_check_key(server_key, "curve_server_key"),
            _check_key(public_key, "curve_public_key"),
            _check_key(secret_key, "curve_secret_key"))


def _apply_curve(sock, curve):
    if curve is not None:
        server, public, secret = curve
        sock.setsockopt(zmq.CURVE_SERVERKEY, server)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)


def _key_files(server_pub_path, client_key_prefix):
    return dict(curve_server_key=read_key_file(server_pub_path),
                curve_public_key=read_key_file(client_key_prefix + ".pub"),
                curve_secret_key=read_key_file(client_key_prefix + ".key"))


def _to_ms(t):
    """``now``/``from``/``to`` values: a datetime becomes Unix epoch
    milliseconds; anything else goes to the server as given."""
    if isinstance(t, datetime.datetime):
        if t.tzinfo is None:
            t = t.astimezone()          # naive: local time, like time.mktime
        return int(round(t.timestamp() * 1000))
    return t


_MISSING = object()


# --------------------------------------------------------------------------
# Request/reply client


class Client:
    """Request/reply client for the ROUTER socket.

    ``endpoint``: the service's request endpoint.  ``timeout``: seconds to
    wait for one attempt's reply.  ``retries``: extra attempts after a
    timeout, for the calls that are safe to repeat (see below), so an
    idempotent call gives up after about ``timeout * (retries + 1)`` seconds
    and raises :class:`Timeout`.

    The socket is a DEALER speaking the REQ envelope (an empty delimiter
    frame, then one msgpack map).  Every request carries an incrementing
    ``id``; replies are matched by it and a reply to an earlier, abandoned
    request is discarded.  After a timeout the socket is closed (dropping
    whatever was still queued) and a fresh one connected.

    Retries and idempotency: ``score``, ``score_many``, ``recommend``,
    ``profile``, ``model``, ``kpis``, ``stats`` and ``ping`` only read, so
    they are re-sent on a timeout (on a new connection, so a server restart
    is ridden out).  ``track`` is re-sent only when *every* event carries an
    ``event_id``: the server counts an ``event_id`` once, so a repeat cannot
    double count.  Otherwise a ``track`` timeout raises :class:`Timeout` at
    once: the batch may or may not have been stored, and the caller decides.
    ``alias``, ``forget`` and ``reload`` are never re-sent.

    Errors the server reports raise a :class:`LeadscoreError` subclass per
    wire code: :class:`BadRequest`, :class:`UnknownOp`, :class:`TooLarge`,
    :class:`Unauthorized`, :class:`Unavailable`, :class:`Internal`.

    CurveZMQ: give ``curve_server_key`` (the server's public key, Z85 text
    as in the ``.pub`` file of ``leadscore keygen``) together with this
    client's ``curve_public_key`` and ``curve_secret_key``; or use
    :meth:`from_key_files`.  A key the server does not list gets no answer
    at all, so it shows up as :class:`Timeout`.

    Methods return the reply map without ``ok`` and ``id``.  Not
    thread-safe: use one Client per thread.
    """

    #: ops that only read: always safe to send again
    IDEMPOTENT_OPS = frozenset(
        ("score", "recommend", "profile", "model", "kpis", "stats", "ping"))

    def __init__(self, endpoint=DEFAULT_ENDPOINT, timeout=2.0, retries=2,
                 curve_server_key=None, curve_public_key=None,
                 curve_secret_key=None, context=None):
        if timeout is None or timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.endpoint = endpoint
        self.timeout = float(timeout)
        self.retries = int(retries)
        self._curve = _curve_options(curve_server_key, curve_public_key,
                                     curve_secret_key)
        self._ctx = context if context is not None else zmq.Context.instance()
        self._ids = itertools.count(1)
        self._sock = None
        self._closed = False
        #: attempts the last call needed (1 = answered the first time)
        self.last_attempts = 0
        #: replies discarded because their request was already given up on
        self.discarded_replies = 0
        self._connect()

    @classmethod
    def from_key_files(cls, endpoint, server_pub_path, client_key_prefix,
                       **kwargs):
        """A CurveZMQ client from ``leadscore keygen`` files: the server's
        ``.pub`` file and this client's ``PREFIX.pub`` / ``PREFIX.key``."""
        kwargs.update(_key_files(server_pub_path, client_key_prefix))
        return cls(endpoint, **kwargs)

    # -- socket ----------------------------------------------------------

    def _connect(self):
        sock = self._ctx.socket(zmq.DEALER)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            # A full send queue must not block forever.
            sock.setsockopt(zmq.SNDTIMEO, int(self.timeout * 1000))
            _apply_curve(sock, self._curve)
            sock.connect(self.endpoint)
        except Exception:
            sock.close(0)
            raise
        self._sock = sock

    def _reset(self):
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    def close(self):
        """Close the socket (requests still queued are dropped)."""
        self._reset()
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return "Client(%r, timeout=%r, retries=%r%s)" % (
            self.endpoint, self.timeout, self.retries,
            ", curve" if self._curve else "")

    # -- exchange --------------------------------------------------------

    def _exchange(self, requests, retry):
        """Send every request map, pipelined; return the replies in order.
        Raises the first error reply; re-sends unanswered requests after a
        timeout when ``retry`` allows."""
        if self._closed:
            raise RuntimeError("the client is closed")
        replies = [None] * len(requests)
        pending = set(range(len(requests)))
        attempts = 0
        while True:
            attempts += 1
            self.last_attempts = attempts
            if self._sock is None:
                self._connect()
            sock = self._sock
            inflight = {}                       # id -> request index
            timed_out = False
            try:
                for i in sorted(pending):
                    rid = next(self._ids)
                    msg = dict(requests[i])
                    msg["id"] = rid
                    sock.send_multipart([b"", msgpack.packb(msg, use_bin_type=True)])
                    inflight[rid] = i
            except zmq.Again:
                timed_out = True
            deadline = time.monotonic() + self.timeout
            while inflight and not timed_out:
                left = deadline - time.monotonic()
                if left <= 0 or not sock.poll(max(1, int(left * 1000)), zmq.POLLIN):
                    timed_out = True
                    break
                frames = sock.recv_multipart()
                reply = self._decode(frames)
                rid = reply.get("id", _MISSING)
                if rid is _MISSING and len(inflight) == 1:
                    # The server could not read our id (e.g. a frame over
                    # max-frame): with one request out it is that one's.
                    rid = next(iter(inflight))
                if rid is _MISSING:
                    if reply.get("ok") is not True:
                        self._reset()
                        raise _error_from_reply(reply)
                    self.discarded_replies += 1
                    continue
                try:
                    i = inflight.pop(rid)
                except (KeyError, TypeError):
                    self.discarded_replies += 1     # a late reply: discard
                    continue
                if reply.get("ok") is not True:
                    # Other replies still due are discarded by id later.
                    raise _error_from_reply(reply)
                reply.pop("ok", None)
                reply.pop("id", None)
                replies[i] = reply
                pending.discard(i)
            if not pending:
                return replies
            # Timed out: drop this socket and whatever it still queues.
            self._reset()
            if not retry or attempts > self.retries:
                op = requests[min(pending)].get("op")
                raise Timeout("no reply from %s to %r within %gs (%d attempt%s)"
                              % (self.endpoint, op, self.timeout, attempts,
                                 "" if attempts == 1 else "s"))

    def _decode(self, frames):
        body = frames[-1] if frames else b""
        try:
            reply = msgpack.unpackb(body, raw=False, strict_map_key=False)
        except Exception as e:
            self._reset()
            raise ProtocolError("reply is not msgpack: %s" % e) from None
        if not isinstance(reply, dict):
            self._reset()
            raise ProtocolError("reply is not a map: %r" % (reply,))
        return reply

    def call(self, op, fields=None, retry=None):
        """Send any op (``fields``: the other request fields) and return the
        reply without ``ok``/``id``.  ``retry`` defaults to whether ``op`` is
        one of :attr:`IDEMPOTENT_OPS`."""
        req = {"op": op}
        if fields:
            req.update(fields)
        if retry is None:
            retry = op in self.IDEMPOTENT_OPS
        return self._exchange([req], retry)[0]

    # -- ops -------------------------------------------------------------

    def track(self, events):
        """Store a batch of events (a list of event maps; one map is taken
        as a batch of one).  Returns ``{accepted, duplicates, rejected}``;
        ``rejected`` lists ``{index, code, message}`` for the events the
        server refused (an unknown type, ...) while the others are stored.
        A return means every accepted event is durably committed.

        Retries: the batch is re-sent after a timeout only when EVERY event
        carries an ``event_id`` (the server counts an ``event_id`` once, so
        re-sending is safe).  Without event ids a timeout raises
        :class:`Timeout` at once -- the batch may or may not have been
        stored.  Give events ids to get at-least-once delivery with
        exactly-once counting."""
        if isinstance(events, dict):
            events = [events]
        events = list(events)
        safe = bool(events) and all(
            isinstance(e, dict) and e.get("event_id") not in (None, "")
            for e in events)
        return self._exchange([{"op": "track", "events": events}], safe)[0]

    def score(self, customer, explain=False, now=None):
        """Score one customer (an unknown id gets a cold-start score with
        ``known: False``).  ``now``: Unix epoch ms (or a datetime) to score
        as of.  Returns the result map (``score``, ``score_100``, ``tier``,
        ``p_alive``, ``clv``, ``segments``, ...)."""
        req = {"op": "score", "customer": customer}
        if explain:
            req["explain"] = True
        if now is not None:
            req["now"] = _to_ms(now)
        return self._exchange([req], True)[0]

    def score_many(self, customers, explain=False, now=None, batch_size=1000):
        """Score several customers; returns the results in the same order.
        Lists longer than ``batch_size`` (the server's ``--max-customers``,
        1000 by default) go as several pipelined requests."""
        customers = list(customers)
        if not customers:
            return []
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        reqs = []
        for start in range(0, len(customers), batch_size):
            req = {"op": "score", "customers": customers[start:start + batch_size]}
            if explain:
                req["explain"] = True
            if now is not None:
                req["now"] = _to_ms(now)
            reqs.append(req)
        out = []
        for req, reply in zip(reqs, self._exchange(reqs, True)):
            results = reply.get("results")
            if not isinstance(results, list) or len(results) != len(req["customers"]):
                raise ProtocolError("score reply has %s results for %d customers"
                                    % (len(results) if isinstance(results, list)
                                       else "no", len(req["customers"])))
            out.extend(results)
        return out

    def recommend(self, customer, k=None, now=None):
        """Content segments for a customer: ``{customer, segments: [{segment,
        weight, reason}, ...]}`` best first; ``k`` bounds the list.
        ``now``: Unix epoch ms (or a datetime) to answer as of."""
        req = {"op": "recommend", "customer": customer}
        if k is not None:
            req["k"] = k
        if now is not None:
            req["now"] = _to_ms(now)
        return self._exchange([req], True)[0]

    def profile(self, customer, now=None):
        """Raw features: ``{customer, known, features: {...}}``, with a
        ``<type>_count`` for every event type, ``first_seen``, ``last_seen``.
        ``now``: Unix epoch ms (or a datetime): the features as they were
        then, replayed from the customer's event history (``known: False``
        when it was first seen later)."""
        req = {"op": "profile", "customer": customer}
        if now is not None:
            req["now"] = _to_ms(now)
        return self._exchange([req], True)[0]

    def alias(self, from_id, to_id):
        """Fold an anonymous id into a customer id (at login): ``{merged}``.
        Not re-sent on a timeout."""
        return self._exchange([{"op": "alias", "from": from_id, "to": to_id}],
                              False)[0]

    def forget(self, customer):
        """Erase a customer and its aliases (admin): ``{deleted}``.  Not
        re-sent on a timeout."""
        return self._exchange([{"op": "forget", "customer": customer}], False)[0]

    def model(self):
        """The active model: ``name``, ``version``, ``trained_at``,
        ``horizon_days``, ``features``."""
        return self._exchange([{"op": "model"}], True)[0]

    def reload(self, path=None):
        """Load a model file atomically (admin); ``{name, version}``.  On a
        bad file the old model stays and this raises.  Not re-sent."""
        req = {"op": "reload"}
        if path is not None:
            req["path"] = path
        return self._exchange([req], False)[0]

    def kpis(self, from_ms=None, to_ms=None):
        """Loyalty KPIs over a period (Unix epoch ms or datetimes)."""
        req = {"op": "kpis"}
        if from_ms is not None:
            req["from"] = _to_ms(from_ms)
        if to_ms is not None:
            req["to"] = _to_ms(to_ms)
        return self._exchange([req], True)[0]

    def stats(self):
        """Server counters, latency percentiles per op, uptime (admin)."""
        return self._exchange([{"op": "stats"}], True)[0]

    def ping(self):
        """``{pong: True, version}``."""
        return self._exchange([{"op": "ping"}], True)[0]


# --------------------------------------------------------------------------
# Fire-and-forget


class Pusher:
    """Fire-and-forget event batches to the service's PULL socket.

    No acknowledgement: ZeroMQ queues batches while the service is away and
    its back-pressure keeps a fast tracker from losing events while the
    service runs, but a crash (of either side) loses what was queued, and a
    batch the server refuses is dropped silently.  Use
    :meth:`Client.track` when you need to know.

    ``timeout``: how long :meth:`push` may wait on a full send queue before
    raising :class:`Timeout`; ``linger``: how long :meth:`close` waits to
    flush queued batches.  CurveZMQ keys as for :class:`Client`.
    """

    def __init__(self, endpoint=DEFAULT_PULL_ENDPOINT, timeout=2.0, linger=2.0,
                 curve_server_key=None, curve_public_key=None,
                 curve_secret_key=None, context=None):
        self.endpoint = endpoint
        self.timeout = float(timeout)
        self.linger = float(linger)
        curve = _curve_options(curve_server_key, curve_public_key,
                               curve_secret_key)
        self._ctx = context if context is not None else zmq.Context.instance()
        sock = self._ctx.socket(zmq.PUSH)
        try:
            sock.setsockopt(zmq.LINGER, int(self.linger * 1000))
            sock.setsockopt(zmq.SNDTIMEO, int(self.timeout * 1000))
            _apply_curve(sock, curve)
            sock.connect(endpoint)
        except Exception:
            sock.close(0)
            raise
        self._sock = sock

    @classmethod
    def from_key_files(cls, endpoint, server_pub_path, client_key_prefix,
                       **kwargs):
        """A CurveZMQ pusher from ``leadscore keygen`` files."""
        kwargs.update(_key_files(server_pub_path, client_key_prefix))
        return cls(endpoint, **kwargs)

    def push(self, events, batch_size=10000):
        """Queue events as ``{"op": "track", "events": [...]}`` messages of at
        most ``batch_size`` events (the server's ``--max-batch``).  Returns
        the number of messages queued."""
        if self._sock is None:
            raise RuntimeError("the pusher is closed")
        if isinstance(events, dict):
            events = [events]
        events = list(events)
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        sent = 0
        for start in range(0, len(events), batch_size):
            body = msgpack.packb({"op": "track",
                                  "events": events[start:start + batch_size]},
                                 use_bin_type=True)
            try:
                self._sock.send(body)
            except zmq.Again:
                raise Timeout("send queue to %s full for %gs (%d of %d "
                              "batches queued)" % (
                                  self.endpoint, self.timeout, sent,
                                  -(-len(events) // batch_size))) from None
            sent += 1
        return sent

    def close(self, linger=None):
        """Close, waiting up to ``linger`` seconds (default: the pusher's) for
        queued batches to go out."""
        if self._sock is not None:
            ms = int((self.linger if linger is None else linger) * 1000)
            self._sock.close(ms)
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
