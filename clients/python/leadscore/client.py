"""The synchronous request/reply :class:`Client`."""

from __future__ import annotations

import itertools
import time
import warnings
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping,
                    Optional, Sequence, Tuple, Union)

import zmq

from . import _common as c
from . import cluster as cl
from ._common import (DEFAULT_ENDPOINT, CurveKey, Event, IDEMPOTENT_OPS,
                      Reply, TimeLike)
from .cluster import ClusterMap
from .errors import (LeadscoreError, Timeout, Unavailable, UnknownOp,
                     error_from_reply)

__all__ = ["Client"]


class Client:
    """Synchronous request/reply client for the service's ROUTER socket.

    ``endpoint``: the request endpoint (``tcp://host:5555``).  ``timeout``:
    seconds to wait for one attempt's reply.  ``retries``: extra attempts
    after a timeout, for the calls that are safe to repeat (see below), so
    an idempotent call gives up after about ``timeout * (retries + 1)``
    seconds and raises :class:`~leadscore.Timeout`.

    The socket is a DEALER speaking the REQ envelope (an empty delimiter
    frame, then one msgpack map).  Every request carries an incrementing
    ``id``; replies are matched by it and a reply to an earlier, abandoned
    request is discarded (counted in :attr:`discarded_replies`).  After a
    timeout the socket is closed (dropping whatever was still queued) and a
    fresh one connected.

    Retries and idempotency: ``score``, ``score_many``, ``recommend``,
    ``profile``, ``model``, ``kpis``, ``stats``, ``ping``,
    ``audience_list``, ``audience_members`` and ``triggers`` only read, so
    they are re-sent on a timeout (on a new connection, so a server restart
    is ridden out).  ``track`` is re-sent only when *every* event carries an
    ``event_id``: the server counts an ``event_id`` once, so a repeat cannot
    double count.  Otherwise a ``track`` timeout raises ``Timeout`` at once:
    the batch may or may not have been stored, and the caller decides.
    ``alias``, ``forget``, ``reload``, ``audience_put`` and
    ``audience_delete`` are never re-sent.

    Errors the server reports raise the :class:`~leadscore.LeadscoreError`
    subclass of their wire code: ``BadRequest``, ``UnknownOp``,
    ``TooLarge``, ``Unauthorized``, ``Unavailable``, ``Internal``.

    CurveZMQ: give ``curve_server_key`` (the server's public key, Z85 text
    as in the ``.pub`` file of ``leadscore keygen``) together with this
    client's ``curve_public_key`` and ``curve_secret_key``; or use
    :meth:`from_key_files`.  A key the server does not list gets no answer
    at all, so it shows up as ``Timeout``.

    Methods return the reply map without ``ok`` and ``id``.  Not
    thread-safe (ZeroMQ sockets are not): use one Client per thread, or
    :class:`~leadscore.AsyncClient` for many requests in flight.  Use it in
    a ``with`` block, or call :meth:`close`.

    Cluster mode: give several endpoints of a cluster's nodes (a list, or
    one comma-separated string).  At the first call that names a customer
    the client asks the first of them that answers for the partition map
    (op ``cluster``) and from then on sends ``score``, ``profile`` and
    ``recommend`` of a customer straight to the node that owns the
    customer's partition, and to its standby when the owner does not
    answer in time (``failover`` seconds, default ``timeout``).
    ``score_many`` and ``track`` are split by owner, sent to all owners at
    once and the replies merged in the caller's order.  A node refusing a
    customer it does not hold (the map changed) makes the client fetch the
    map again and resend, once.  Other ops go to the first endpoint (after
    a map fetch: the node that answered it).  Given one endpoint the client
    routes nothing and never sends ``cluster`` (unless ``cluster=True``):
    the node it talks to forwards.  See :attr:`cluster_map`.
    """

    #: ops that only read: always safe to send again
    IDEMPOTENT_OPS = IDEMPOTENT_OPS

    #: cluster mode: seconds after which the map is fetched again before a
    #: routed request (a partition may have moved; the old owner forwards,
    #: at one more hop)
    map_max_age: float = cl.MAP_MAX_AGE

    def __init__(self, endpoint: Union[str, Sequence[str]] = DEFAULT_ENDPOINT,
                 timeout: float = 2.0,
                 retries: int = 2, curve_server_key: Optional[CurveKey] = None,
                 curve_public_key: Optional[CurveKey] = None,
                 curve_secret_key: Optional[CurveKey] = None,
                 context: Optional[zmq.Context] = None,
                 cluster: Optional[bool] = None,
                 failover: Optional[float] = None) -> None:
        """Connect (lazily: nothing is sent until the first call).
        ``context``: a ``zmq.Context`` to use instead of the global one.

        ``endpoint``: one endpoint, or several (a list, or a comma-separated
        string) of a cluster's nodes.  ``cluster``: None (default) routes by
        the cluster map when several endpoints are given; True routes even
        with one; False never routes (everything goes to the first
        endpoint).  ``failover``: in cluster mode, seconds a partition's
        owner gets to answer a read before it goes to the standby (default:
        ``timeout``)."""
        c.check_timeout(timeout, retries)
        if failover is not None and failover <= 0:
            raise ValueError("failover must be a positive number of seconds")
        eps = cl.parse_endpoints(endpoint)
        #: the endpoints given
        self.endpoints = eps
        self._routing = len(eps) > 1 if cluster is None else bool(cluster)
        #: where requests go: the endpoint given; in cluster mode the home
        #: node, which gets the ops that name no customer
        self.endpoint = (endpoint if isinstance(endpoint, str) and "," not in endpoint
                         and not self._routing else eps[0])
        self.failover = None if failover is None else float(failover)
        self.timeout = float(timeout)
        self.retries = int(retries)
        self._curve = c.curve_options(curve_server_key, curve_public_key,
                                      curve_secret_key)
        self._ctx = context if context is not None else zmq.Context.instance()
        self._ids = itertools.count(1)
        self._sock: Optional[zmq.Socket] = None
        self._closed = False
        #: attempts the last call needed (1 = answered the first time)
        self.last_attempts = 0
        #: replies discarded because their request was already given up on
        self.discarded_replies = 0
        # cluster mode: a single-endpoint Client per node, the map
        self._subs: Dict[str, "Client"] = {}
        self._discarded_gone = 0        # discarded by node clients since closed
        self._map: Optional[ClusterMap] = None
        self._map_known = False         # asked: self._map, None = a single node
        self._map_at = 0.0
        self._stale = False
        if self._routing:
            self._sub(self.endpoint)
        else:
            self._connect()

    @classmethod
    def from_key_files(cls, endpoint: Union[str, Sequence[str]], server_pub_path: str,
                       client_key_prefix: str, **kwargs: Any) -> "Client":
        """A CurveZMQ client from ``leadscore keygen`` files: the server's
        ``.pub`` file and this client's ``PREFIX.pub`` / ``PREFIX.key``.
        Other keyword arguments go to the constructor."""
        kwargs.update(c.key_files(server_pub_path, client_key_prefix))
        return cls(endpoint, **kwargs)

    # -- socket ----------------------------------------------------------

    def _connect(self) -> None:
        sock = self._ctx.socket(zmq.DEALER)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            # A full send queue must not block forever.
            sock.setsockopt(zmq.SNDTIMEO, int(self.timeout * 1000))
            c.apply_curve(sock, self._curve)
            sock.connect(self.endpoint)
        except Exception:
            sock.close(0)
            raise
        self._sock = sock

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close the socket (requests still queued are dropped).  Calls after
        this raise ``RuntimeError``."""
        self._reset()
        for sub in self._subs.values():
            sub.close()
        self._closed = True

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "Client(%r, timeout=%r, retries=%r%s%s)" % (
            self.endpoints if self._routing else self.endpoint,
            self.timeout, self.retries, ", curve" if self._curve else "",
            ", cluster=True" if self._routing else "")

    # -- cluster mode ------------------------------------------------------

    @property
    def cluster_map(self) -> Optional[ClusterMap]:
        """The cluster map requests are routed by (None: not fetched yet, a
        single node answered, or the client does not route)."""
        return self._map

    def refresh_map(self) -> Optional[ClusterMap]:
        """Ask for the cluster map now (op ``cluster``): the home node
        first, then the other endpoints given, then the nodes of the last
        map, until one answers; that one becomes the home node.  Returns
        the map, or None when a single node answered (then everything goes
        to it).  Raises the last error (:class:`~leadscore.Timeout`...)
        when none answered.  Without routing (one endpoint) it asks that
        endpoint and returns what it said, routing nothing."""
        if self._closed:
            raise RuntimeError("the client is closed")
        if not self._routing:
            return ClusterMap.from_reply(self._exchange([{"op": "cluster"}], True)[0],
                                         self.endpoint)
        gather = cl.MapGather()
        for ep in cl.refresh_candidates(self.endpoint, self.endpoints, self._map):
            sub = self._sub(ep)
            try:
                reply = sub._exchange([{"op": "cluster"}], False)[0]
            except UnknownOp:
                reply = {"mode": "single"}      # a server older than clusters
            except LeadscoreError as e:
                gather.last = e
                continue
            finally:
                self._count(sub)
            if gather.add(reply, ep):
                break
        best, home = gather.result()
        self._map, self._map_known, self._stale = best, True, False
        self._map_at = time.monotonic()
        self.endpoint = home
        self._let_go()
        return best

    def _let_go(self) -> None:
        """Close the node clients the map no longer needs."""
        for ep in cl.unneeded(list(self._subs), self.endpoint, self.endpoints, self._map):
            sub = self._subs.pop(ep)
            self._discarded_gone += sub.discarded_replies
            sub.close()

    def _sub(self, ep: str) -> "Client":
        """The single-endpoint client of one node (made at first use)."""
        sub = self._subs.get(ep)
        if sub is None:
            curve = self._curve or (None, None, None)
            sub = Client(ep, timeout=self.timeout, retries=self.retries,
                         curve_server_key=curve[0], curve_public_key=curve[1],
                         curve_secret_key=curve[2], context=self._ctx,
                         cluster=False)
            sub._ids = self._ids        # ids unique over every socket
            self._subs[ep] = sub
        return sub

    def _count(self, sub: "Client") -> None:
        self.last_attempts = sub.last_attempts
        self.discarded_replies = self._discarded_gone + sum(
            s.discarded_replies for s in self._subs.values())

    def _current_map(self) -> Optional[ClusterMap]:
        age = time.monotonic() - self._map_at
        if (not self._map_known or self._stale or age >= self.map_max_age
                or (self._map is not None and not self._map.complete()
                    and age >= cl.STALE_AFTER_TIMEOUT)):
            return self.refresh_map()
        return self._map

    def _scatter(self, legs: Sequence[Tuple[Sequence[str], List[Dict[str, Any]]]],
                 retry: bool, timeout: Optional[float] = None
                 ) -> List[Union[List[Reply], LeadscoreError]]:
        """Send each leg's requests (pipelined) to the first of its
        endpoints, all legs at once; return per leg its replies in order, or
        the error that ended it.  A leg not answered in time goes to its
        next endpoint (owner, standby, owner, ...): ``max(retries + 1,
        endpoints)`` attempts when ``retry`` allows, else one."""
        wait = self.timeout if timeout is None else timeout
        if self._closed:
            raise RuntimeError("the client is closed")
        n = len(legs)
        out: List[Any] = [None] * n
        replies: List[List[Any]] = [[None] * len(reqs) for _, reqs in legs]
        pending = [set(range(len(reqs))) for _, reqs in legs]
        attempts = [0] * n
        most = [max(self.retries + 1, len(t)) if retry else 1 for t, _ in legs]
        subs: List[Any] = [None] * n
        deadline = [0.0] * n
        rids: Dict[int, Tuple[int, int]] = {}          # id -> (leg, request)

        def start(k: int) -> None:
            targets, reqs = legs[k]
            attempts[k] += 1
            turn = (attempts[k] - 1) % len(targets)
            sub = subs[k] = self._sub(targets[turn])
            w = wait
            if turn == 0 and len(targets) > 1 and self.failover is not None:
                w = min(wait, self.failover)
            deadline[k] = time.monotonic() + w
            if sub._sock is None:
                sub._connect()
            try:
                for i in sorted(pending[k]):
                    rid = next(self._ids)
                    sub._sock.send_multipart(c.pack_request(reqs[i], rid))
                    rids[rid] = (k, i)
            except zmq.Again:
                deadline[k] = 0.0                       # a full queue: timed out

        def drop(k: int) -> None:
            for rid in [r for r, (kk, _) in rids.items() if kk == k]:
                del rids[rid]

        def fail_sub(sub: Any, err: LeadscoreError) -> None:
            for k in range(n):
                if out[k] is None and subs[k] is sub:
                    drop(k)
                    out[k] = err
            sub._reset()

        def take(sub: Any, reply: Dict[str, Any]) -> None:
            rid = reply.get("id", c.MISSING)
            if rid is c.MISSING:
                mine = [r for r, (k, _) in rids.items() if subs[k] is sub]
                if len(mine) == 1:
                    # The server could not read our id (a frame over
                    # max-frame): with one request out it is that one's.
                    rid = mine[0]
                elif reply.get("ok") is not True:
                    fail_sub(sub, error_from_reply(reply))
                    return
                else:
                    sub.discarded_replies += 1
                    return
            try:
                k, i = rids.pop(rid)
            except (KeyError, TypeError):
                sub.discarded_replies += 1              # a late reply: discard
                return
            epoch = reply.get("map_epoch")
            if (isinstance(epoch, int) and self._map is not None
                    and epoch > self._map.epoch):
                self._stale = True                      # fetch the map next time
            if reply.get("ok") is not True:
                drop(k)
                out[k] = error_from_reply(reply)
                return
            replies[k][i] = c.reply_result(reply)
            pending[k].discard(i)
            if not pending[k]:
                out[k] = replies[k]

        for k in range(n):
            start(k)
        timed_out = False
        while True:
            active = [k for k in range(n) if out[k] is None]
            if not active:
                break
            now = time.monotonic()
            expired = {k for k in active if deadline[k] <= now}
            if expired:
                timed_out = True
                dead = {id(subs[k]) for k in expired}
                # Legs still waiting on a socket that is dropped now go
                # again to the same endpoint, without losing an attempt.
                again = {k for k in active if k not in expired and id(subs[k]) in dead}
                for k in sorted(expired | again):
                    if subs[k]._sock is not None:
                        subs[k]._reset()        # drop it and its queue
                for k in sorted(again):
                    drop(k)
                    attempts[k] -= 1
                    start(k)
                for k in sorted(expired):
                    drop(k)
                    if attempts[k] < most[k]:
                        start(k)
                    else:
                        op = legs[k][1][min(pending[k])].get("op")
                        out[k] = Timeout("no reply from %s to %r within %gs (%d attempt%s)"
                                         % (" or ".join(legs[k][0]), op, wait, attempts[k],
                                            "" if attempts[k] == 1 else "s"))
                continue
            socks: Dict[int, Any] = {}
            for k in active:
                if subs[k]._sock is not None:
                    socks[id(subs[k])] = subs[k]
            poller = zmq.Poller()
            for sub in socks.values():
                poller.register(sub._sock, zmq.POLLIN)
            left = min(deadline[k] for k in active) - now
            ready = dict(poller.poll(max(1, int(left * 1000) + 1)))
            for sub in socks.values():
                if sub._sock is None or sub._sock not in ready:
                    continue
                while sub._sock is not None:
                    try:
                        frames = sub._sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    try:
                        reply = c.decode_reply(frames)
                    except LeadscoreError as e:
                        fail_sub(sub, e)
                        break
                    take(sub, reply)
        self.last_attempts = max(attempts) if attempts else 0
        self.discarded_replies = self._discarded_gone + sum(
            s.discarded_replies for s in self._subs.values())
        if timed_out and time.monotonic() - self._map_at >= cl.STALE_AFTER_TIMEOUT:
            self._stale = True          # a node may have moved or died
        return out

    def _routed(self, keys: Sequence[Any],
                make: Callable[[List[int]], List[Dict[str, Any]]],
                retry: bool, timeout: Optional[float] = None
                ) -> List[Tuple[List[int], List[Dict[str, Any]], List[Reply]]]:
        """Route the items ``keys`` (customer ids, one per item) by the
        map: one leg per owner, ``make(positions)`` its requests.  Returns
        (positions, requests, replies) per leg.  Raises the first leg's
        error; a "does not hold" refusal fetches the map and resends those
        items, once."""
        todo: List[int] = list(range(len(keys)))
        done: List[Tuple[List[int], List[Dict[str, Any]], List[Reply]]] = []
        for again in (False, True):
            cmap = self._current_map()
            legs = [(targets, idx, make(idx))
                    for targets, idx in cl.plan(keys, todo, cmap, self.endpoint)]
            results = self._scatter([(t, reqs) for t, _, reqs in legs], retry, timeout)
            answered, refused, first = cl.sort_legs(
                legs, results, again, lambda r: isinstance(r, LeadscoreError))
            done.extend(answered)
            if first is not None:
                raise first
            if not refused:
                return done
            self._stale = True
            todo = sorted(refused)
        raise AssertionError("unreachable")

    def _route(self, req: Dict[str, Any], retry: bool,
               timeout: Optional[float] = None) -> Reply:
        """One request in cluster mode: routed by its customer(s), or to the
        home node."""
        kind = cl.routed_request(req)
        if kind == "one":
            return self._routed([req["customer"]], lambda idx: [req], retry, timeout)[0][2][0]
        if kind == "many":
            ids = req["customers"]
            parts = self._routed(ids, lambda idx: [dict(req, customers=[ids[i] for i in idx])],
                                 retry, timeout)
            return cl.merge_score([(idx, replies[0]) for idx, _, replies in parts], len(ids))
        if kind == "track":
            evs = req["events"]
            parts = self._routed([cl.event_customer(e) for e in evs],
                                 lambda idx: [dict(req, events=[evs[i] for i in idx])],
                                 retry, timeout)
            return cl.merge_track([(idx, replies[0]) for idx, _, replies in parts])
        return self._exchange([req], retry, timeout)[0]

    # -- exchange --------------------------------------------------------

    def _exchange(self, requests: List[Dict[str, Any]], retry: bool,
                  timeout: Optional[float] = None) -> List[Reply]:
        """Send every request map, pipelined; return the replies in order.
        Raises the first error reply; re-sends unanswered requests after a
        timeout when ``retry`` allows.  ``timeout``: this call's wait per
        attempt, instead of :attr:`timeout`."""
        if self._routing:
            # Cluster mode: an op for the home node, on its own client.
            if self._closed:
                raise RuntimeError("the client is closed")
            sub = self._sub(self.endpoint)
            try:
                return sub._exchange(requests, retry, timeout)
            finally:
                self._count(sub)
        wait = self.timeout if timeout is None else timeout
        if self._closed:
            raise RuntimeError("the client is closed")
        replies: List[Any] = [None] * len(requests)
        pending = set(range(len(requests)))
        attempts = 0
        while True:
            attempts += 1
            self.last_attempts = attempts
            if self._sock is None:
                self._connect()
            sock = self._sock
            assert sock is not None
            inflight: Dict[int, int] = {}        # id -> request index
            timed_out = False
            try:
                for i in sorted(pending):
                    rid = next(self._ids)
                    sock.send_multipart(c.pack_request(requests[i], rid))
                    inflight[rid] = i
            except zmq.Again:
                timed_out = True
            deadline = time.monotonic() + wait
            while inflight and not timed_out:
                left = deadline - time.monotonic()
                if left <= 0 or not sock.poll(max(1, int(left * 1000)), zmq.POLLIN):
                    timed_out = True
                    break
                try:
                    reply = c.decode_reply(sock.recv_multipart())
                except Exception:
                    self._reset()
                    raise
                rid = reply.get("id", c.MISSING)
                if rid is c.MISSING and len(inflight) == 1:
                    # The server could not read our id (a frame over
                    # max-frame): with one request out it is that one's.
                    rid = next(iter(inflight))
                if rid is c.MISSING:
                    if reply.get("ok") is not True:
                        self._reset()
                        raise error_from_reply(reply)
                    self.discarded_replies += 1
                    continue
                try:
                    i = inflight.pop(rid)
                except (KeyError, TypeError):
                    self.discarded_replies += 1     # a late reply: discard
                    continue
                # An error raises; replies still due are discarded by id later.
                replies[i] = c.reply_result(reply)
                pending.discard(i)
            if not pending:
                return replies
            # Timed out: drop this socket and whatever it still queues.
            self._reset()
            if not retry or attempts > self.retries:
                op = requests[min(pending)].get("op")
                raise Timeout("no reply from %s to %r within %gs (%d attempt%s)"
                              % (self.endpoint, op, wait, attempts,
                                 "" if attempts == 1 else "s"))

    def call(self, op: str, fields: Optional[Mapping[str, Any]] = None,
             retry: Optional[bool] = None) -> Reply:
        """Send any op (``fields``: the other request fields) and return the
        reply without ``ok``/``id``.  ``retry`` defaults to whether ``op`` is
        one of :attr:`IDEMPOTENT_OPS`."""
        req, safe = c.call_request(op, fields, retry)
        if self._routing:
            return self._route(req, safe)
        return self._exchange([req], safe)[0]

    # -- ops -------------------------------------------------------------

    def track(self, events: Union[Event, Iterable[Event]]) -> Reply:
        """Store a batch of events (a list of event maps; one map is taken
        as a batch of one).  Returns ``{accepted, duplicates, rejected}``;
        ``rejected`` lists ``{index, code, message}`` for the events the
        server refused (an unknown type, ...) while the others are stored.
        A return means every accepted event is durably committed.

        Retries: the batch is re-sent after a timeout only when EVERY event
        carries an ``event_id`` (the server counts an ``event_id`` once, so
        re-sending is safe).  Without event ids a timeout raises ``Timeout``
        at once -- the batch may or may not have been stored.  Give events
        ids to get at-least-once delivery with exactly-once counting."""
        req, safe = c.track_request(events)
        if self._routing:
            return self._route(req, safe)
        return self._exchange([req], safe)[0]

    def score(self, customer: str, explain: bool = False,
              now: Optional[TimeLike] = None) -> Reply:
        """Score one customer (an unknown id gets a cold-start score with
        ``known: False``).  ``explain``: add the explanation keys.  ``now``:
        Unix epoch ms (or a datetime) to score as of.  Returns the result map
        (``score``, ``score_100``, ``tier``, ``p_alive``, ``clv``,
        ``segments``, ...)."""
        req = c.score_request(customer, explain, now)
        if self._routing:
            return self._route(req, True)
        return self._exchange([req], True)[0]

    def score_many(self, customers: Iterable[str], explain: bool = False,
                   now: Optional[TimeLike] = None,
                   batch_size: int = 1000) -> List[Reply]:
        """Score several customers; returns the results in the same order.
        Lists longer than ``batch_size`` (the server's ``--max-customers``,
        1000 by default) go as several pipelined requests."""
        reqs = c.score_many_requests(customers, explain, now, batch_size)
        if not reqs:
            return []
        if self._routing:
            # Split by owner, each owner's share in batches, all at once.
            ids = [i for r in reqs for i in r["customers"]]
            base = {k: v for k, v in reqs[0].items() if k != "customers"}
            out: List[Any] = [None] * len(ids)
            for idx, sent, replies in self._routed(
                    ids, lambda idx: cl.chunk_customers(base, [ids[i] for i in idx],
                                                        batch_size), True):
                for i, r in zip(idx, c.score_many_results(sent, replies)):
                    out[i] = r
            return out
        return c.score_many_results(reqs, self._exchange(reqs, True))

    def recommend(self, customer: str, k: Optional[int] = None,
                  now: Optional[TimeLike] = None) -> Reply:
        """Content segments for a customer: ``{customer, segments: [{segment,
        weight, reason}, ...]}`` best first; ``k`` bounds the list (1-50).
        ``now``: Unix epoch ms (or a datetime) to answer as of."""
        req = c.recommend_request(customer, k, now)
        if self._routing:
            return self._route(req, True)
        return self._exchange([req], True)[0]

    def profile(self, customer: str, now: Optional[TimeLike] = None) -> Reply:
        """Raw features: ``{customer, known, features: {...}, ...}``, with a
        ``<type>_count`` for every event type, ``first_seen``, ``last_seen``.
        ``now``: Unix epoch ms (or a datetime): the features as they were
        then, replayed from the customer's event history (``known: False``
        when it was first seen later)."""
        req = c.profile_request(customer, now)
        if self._routing:
            return self._route(req, True)
        return self._exchange([req], True)[0]

    def alias(self, from_id: str, to_id: str) -> Reply:
        """Fold an anonymous id into a customer id (at login): ``{merged}``.
        Not re-sent on a timeout."""
        return self._exchange([{"op": "alias", "from": from_id, "to": to_id}],
                              False)[0]

    def forget(self, customer: str) -> Reply:
        """Erase a customer and its aliases (admin): ``{deleted}``.  Not
        re-sent on a timeout."""
        return self._exchange([{"op": "forget", "customer": customer}], False)[0]

    def model(self) -> Reply:
        """The active model: ``name``, ``version``, ``trained_at``,
        ``horizon_days``, ``half_lives_days``, ``features``,
        ``orders_only_customers``."""
        return self._exchange([{"op": "model"}], True)[0]

    def reload(self, path: Optional[str] = None) -> Reply:
        """Load a model file atomically (admin): ``{name, version}``.
        ``path`` is opened by the server (default: its ``--model``).  On a
        bad file the old model stays and this raises ``BadRequest``.  Not
        re-sent on a timeout."""
        return self._exchange([c.reload_request(path)], False)[0]

    def kpis(self, from_ms: Optional[TimeLike] = None,
             to_ms: Optional[TimeLike] = None) -> Reply:
        """Loyalty KPIs over a period (admin; Unix epoch ms or datetimes;
        default: the last 365 days)."""
        return self._exchange([c.kpis_request(from_ms, to_ms)], True)[0]

    def stats(self) -> Reply:
        """Server counters, latency percentiles per op, uptime (admin)."""
        return self._exchange([{"op": "stats"}], True)[0]

    def ping(self) -> Reply:
        """``{pong: True, version}``."""
        return self._exchange([{"op": "ping"}], True)[0]

    # -- audiences and triggers --------------------------------------------

    def audience_put(self, name: str, rule: str) -> Reply:
        """Define audience ``name`` by ``rule`` (admin), or redefine it:
        ``{created, changed, ready}``.  The rule is the audience language of
        PROTOCOL.md over the score result and the features, e.g.
        ``'purchase_count >= 2 and tier == "hot"'``; a bad one raises
        :class:`~leadscore.BadRequest` whose message gives the column
        (``bad rule: at column 8: ...``).  The same rule again changes
        nothing (``changed: False``); a different one starts the audience
        over: its first members come from a pass over the store (no enter
        triggers).  The server answers once that pass is done (``ready``
        True: the members are exact now), or after 5 s with the pass still
        running (``ready`` False: :meth:`audience_list` says when it is).
        The call waits that long on top of :attr:`timeout`.  Not re-sent on
        a timeout."""
        return self._exchange([c.audience_put_request(name, rule)], False,
                              self.timeout + c.AUDIENCE_PUT_WAIT)[0]

    def audience_delete(self, name: str) -> Reply:
        """Delete audience ``name`` and its member list (admin):
        ``{deleted}`` (False when there was none).  Not re-sent on a
        timeout."""
        return self._exchange([{"op": "audience_delete", "name": name}], False)[0]

    def audience_list(self) -> List[Reply]:
        """Every audience, by name: a list of ``{name, rule (canonical
        form), members, ready (the first pass over the store is done),
        created (Unix ms)}``."""
        return c.audiences_of(self._exchange([{"op": "audience_list"}], True)[0])

    def audience_members(self, name: str, limit: Optional[int] = None,
                         cursor: Optional[str] = None) -> Reply:
        """One page of the members of audience ``name``, in customer-id
        order: ``{name, ready, members: [ids], cursor}``.  ``limit``: at
        most this many (1-10000, server default 1000); ``cursor``: the
        ``cursor`` of the previous page (None: from the start).  The last
        page has ``cursor`` None.  An unknown audience raises
        :class:`~leadscore.BadRequest`.  Each page is read from a snapshot
        of its own.  See :meth:`iter_audience_members`."""
        return self._exchange([c.audience_members_request(name, limit, cursor)], True)[0]

    def iter_audience_members(self, name: str, page: int = 1000) -> Iterator[str]:
        """Every member id of audience ``name``, in order, fetched ``page``
        at a time as the iteration goes (a generator)."""
        c.check_page_size(page)
        cursor: Optional[str] = None
        while True:
            r = self.audience_members(name, limit=page, cursor=cursor)
            for member in r.get("members", []):
                yield member
            cursor = r.get("cursor")
            if cursor is None:
                return

    def triggers(self, from_seq: int = 0, limit: Optional[int] = None,
                 wait_ms: Optional[int] = None) -> Reply:
        """Read the trigger outbox after ``from_seq`` (exclusive):
        ``{triggers: [...], next, first, last}``.  Each trigger is ``{seq,
        id, customer, kind ("moment", "enter" or "exit"), name, at, score,
        tier, phase, customer_type, clv, segment}`` (and ``value``, the
        open cart's value, for ``abandoned_cart``); ``id`` is the same on
        every delivery.  Pass ``next`` as ``from_seq`` to go on.  ``first``
        / ``last``: the oldest and newest seq the outbox holds (0: empty);
        ``first > from_seq + 1`` means triggers left it before they were
        read.  ``limit``: at most this many (1-10000, server default 100).
        ``wait_ms`` (0-60000): when nothing is there yet, the server holds
        the request until a trigger is committed or the time is up (this
        call then waits that long on top of :attr:`timeout`)."""
        req = c.triggers_request(from_seq, limit, wait_ms)
        return self._exchange([req], True, c.triggers_timeout(self.timeout, wait_ms))[0]

    def follow_triggers(self, from_seq: int = 0, wait_ms: int = 10000) -> Iterator[Reply]:
        """Every trigger after ``from_seq``, then each new one as it is
        committed, forever (a generator; stop by leaving the loop).
        Long-polls with ``wait_ms``; resumes from the last seq yielded.
        While the service does not answer (a restart) it retries from the
        same seq, pausing 0.5 s, then twice as long each time up to 10 s.
        Triggers that left the outbox before they were read are reported
        with a ``RuntimeWarning``.  Store the ``seq`` of each trigger you
        handle and pass it as ``from_seq`` after a restart of your own."""
        seq = from_seq
        pause = 0.0
        while True:
            asked = time.monotonic()
            try:
                page = self.triggers(seq, wait_ms=wait_ms)
            except (Timeout, Unavailable):
                pause = min(max(pause * 2, c.FOLLOW_PAUSE_FIRST), c.FOLLOW_PAUSE_MAX)
                time.sleep(pause)
                continue
            pause = 0.0
            triggers, nxt = c.check_triggers_page(page)
            missed = c.missed_triggers(seq, page)
            if missed:
                warnings.warn(missed, RuntimeWarning, stacklevel=2)
            for t in triggers:
                if isinstance(t.get("seq"), int):
                    seq = max(seq, t["seq"])
                yield t
            seq = max(seq, nxt)
            if not triggers and time.monotonic() - asked < wait_ms / 2000.0:
                time.sleep(c.FOLLOW_EARLY_EMPTY)
