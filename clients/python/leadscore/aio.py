"""The asyncio request/reply :class:`AsyncClient` (pyzmq's asyncio
sockets)."""

from __future__ import annotations

import asyncio
import itertools
import time
import warnings
from typing import (Any, AsyncIterator, Callable, Dict, Iterable, List,
                    Mapping, Optional, Sequence, Tuple, Union)

import zmq
import zmq.asyncio

from . import _common as c
from . import cluster as cl
from ._common import (DEFAULT_ENDPOINT, CurveKey, Event, IDEMPOTENT_OPS,
                      Reply, TimeLike)
from .cluster import ClusterMap
from .errors import LeadscoreError, Timeout, Unavailable, UnknownOp

__all__ = ["AsyncClient"]


async def _gather_all(coros: List[Any]) -> List[Any]:
    """Runs coros at once; their results or exceptions, in order.  When the
    caller is cancelled (or another BaseException comes through), every one
    still running is cancelled and awaited before it propagates."""
    tasks = [asyncio.ensure_future(co) for co in coros]
    try:
        return await asyncio.gather(*tasks, return_exceptions=True)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class AsyncClient:
    """asyncio request/reply client for the service's ROUTER socket.

    The same ops, arguments, retries and errors as
    :class:`~leadscore.Client`, as coroutines::

        async with AsyncClient("tcp://127.0.0.1:5555") as ls:
            scores = await asyncio.gather(*(ls.score(c) for c in ids))

    One DEALER socket (a ``zmq.asyncio`` socket) carries every request;
    any number of coroutines may call at once, and a reader task matches
    each reply to its request by ``id`` (the server answers pipelined
    requests out of order).  A reply to a request already given up on is
    discarded (counted in :attr:`discarded_replies`).

    ``timeout`` bounds each attempt (sending included); on a timeout the
    calls that are safe to repeat (reads; ``track`` when every event has an
    ``event_id``) are re-sent with a new ``id`` up to ``retries`` times,
    the others raise :class:`~leadscore.Timeout` at once.  When nothing
    else is in flight a timeout also drops the socket and its queue, and
    the next request connects afresh.

    A reply without ``id`` (the server could not read the request: a frame
    over ``--max-frame``) goes to the only request in flight, or, with
    several in flight, to the largest one -- the only kind of request this
    client can send that the server cannot read.

    Use it from one event loop.  ``async with`` or :meth:`close` releases
    the socket; requests still waiting then raise ``RuntimeError``.

    Cluster mode (several endpoints, or ``cluster=True``) routes as
    :class:`~leadscore.Client` does: one socket per node, each customer's
    requests to its partition's owner (the standby when the owner does not
    answer in time), ``score_many`` and ``track`` split by owner and sent
    at once, the replies merged in the caller's order.
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
                 context: Optional[zmq.asyncio.Context] = None,
                 cluster: Optional[bool] = None,
                 failover: Optional[float] = None) -> None:
        """Check the arguments; the socket is made at the first call.
        ``context``: a ``zmq.asyncio.Context`` instead of the global one.
        ``endpoint``, ``cluster``, ``failover``: as for
        :class:`~leadscore.Client` (several endpoints: cluster mode)."""
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
        self._ctx = (context if context is not None
                     else zmq.asyncio.Context.instance())
        self._ids = itertools.count(1)
        self._sock: Optional[zmq.asyncio.Socket] = None
        self._reader: Optional[asyncio.Task] = None
        self._waiters: Dict[int, asyncio.Future] = {}
        self._sizes: Dict[int, int] = {}
        self._closed = False
        #: attempts the call that finished last needed (1 = first time)
        self.last_attempts = 0
        #: replies discarded because their request was already given up on
        self.discarded_replies = 0
        # cluster mode: a single-endpoint AsyncClient per node, the map
        self._subs: Dict[str, "AsyncClient"] = {}
        self._discarded_gone = 0        # discarded by node clients since closed
        self._map: Optional[ClusterMap] = None
        self._map_known = False
        self._map_at = 0.0
        self._stale = False
        self._refreshing: Optional[asyncio.Future] = None

    @classmethod
    def from_key_files(cls, endpoint: Union[str, Sequence[str]], server_pub_path: str,
                       client_key_prefix: str, **kwargs: Any) -> "AsyncClient":
        """A CurveZMQ client from ``leadscore keygen`` files: the server's
        ``.pub`` file and this client's ``PREFIX.pub`` / ``PREFIX.key``.
        Other keyword arguments go to the constructor."""
        kwargs.update(c.key_files(server_pub_path, client_key_prefix))
        return cls(endpoint, **kwargs)

    # -- socket ----------------------------------------------------------

    def _ensure(self) -> zmq.asyncio.Socket:
        if self._closed:
            raise RuntimeError("the client is closed")
        if self._sock is None:
            sock = self._ctx.socket(zmq.DEALER)
            try:
                sock.setsockopt(zmq.LINGER, 0)
                c.apply_curve(sock, self._curve)
                sock.connect(self.endpoint)
            except Exception:
                sock.close(0)
                raise
            self._sock = sock
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(
                self._read_loop(self._sock))
        return self._sock

    def _reset(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    def _fail_all(self, exc: BaseException) -> None:
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(exc)

    async def _read_loop(self, sock: zmq.asyncio.Socket) -> None:
        """Hand each reply to the waiter of its id."""
        while True:
            try:
                frames = await sock.recv_multipart()
            except zmq.ZMQError:
                return                          # the socket was closed
            try:
                reply = c.decode_reply(frames)
            except LeadscoreError as e:
                # Nothing to match it by: every request on it is suspect.
                self._fail_all(e)
                if self._sock is sock:
                    self._reader = None         # this task ends here
                    self._sock = None
                    sock.close(0)
                return
            rid = reply.get("id", c.MISSING)
            if rid is c.MISSING:
                waiting = [r for r, f in self._waiters.items() if not f.done()]
                if len(waiting) == 1:
                    rid = waiting[0]
                elif waiting and reply.get("ok") is not True:
                    rid = max(waiting, key=lambda r: self._sizes.get(r, 0))
            try:
                fut = self._waiters.get(rid)
            except TypeError:                   # an unhashable id: not ours
                fut = None
            if fut is None or fut.done():
                self.discarded_replies += 1
                continue
            fut.set_result(reply)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered or given up on."""
        return len(self._waiters) + sum(s.in_flight for s in self._subs.values())

    def close(self) -> None:
        """Close the socket; requests still waiting raise ``RuntimeError``."""
        self._closed = True
        self._fail_all(RuntimeError("the client was closed"))
        self._reset()
        for sub in self._subs.values():
            sub.close()

    async def aclose(self) -> None:
        """:meth:`close`, as a coroutine (lets the reader task finish)."""
        readers = [r for r in [self._reader] + [s._reader for s in self._subs.values()]
                   if r is not None]
        self.close()
        for reader in readers:
            try:
                await reader
            except (asyncio.CancelledError, Exception):
                pass

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return "AsyncClient(%r, timeout=%r, retries=%r%s%s)" % (
            self.endpoints if self._routing else self.endpoint,
            self.timeout, self.retries, ", curve" if self._curve else "",
            ", cluster=True" if self._routing else "")

    # -- cluster mode ------------------------------------------------------

    @property
    def cluster_map(self) -> Optional[ClusterMap]:
        """The cluster map requests are routed by (None: not fetched yet, a
        single node answered, or the client does not route)."""
        return self._map

    async def refresh_map(self) -> Optional[ClusterMap]:
        """Ask for the cluster map now (op ``cluster``), as
        :meth:`leadscore.Client.refresh_map` does.  Concurrent callers
        share one request."""
        if self._closed:
            raise RuntimeError("the client is closed")
        if not self._routing:
            return ClusterMap.from_reply(await self._request({"op": "cluster"}, True),
                                         self.endpoint)
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._fetch_map())
        return await asyncio.shield(self._refreshing)

    async def _fetch_map(self) -> Optional[ClusterMap]:
        gather = cl.MapGather()
        for ep in cl.refresh_candidates(self.endpoint, self.endpoints, self._map):
            try:
                reply = await self._sub(ep)._request({"op": "cluster"}, False)
            except UnknownOp:
                reply = {"mode": "single"}      # a server older than clusters
            except LeadscoreError as e:
                gather.last = e
                continue
            if gather.add(reply, ep):
                break
        best, home = gather.result()
        self._map, self._map_known, self._stale = best, True, False
        self._map_at = time.monotonic()
        self.endpoint = home
        self._let_go()
        return best

    def _let_go(self) -> None:
        """Close the node clients the map no longer needs and no request
        waits on (one still awaited is closed at a later refresh)."""
        for ep in cl.unneeded(list(self._subs), self.endpoint, self.endpoints, self._map):
            sub = self._subs[ep]
            if sub.in_flight:
                continue
            del self._subs[ep]
            self._discarded_gone += sub.discarded_replies
            sub.close()

    def _sub(self, ep: str) -> "AsyncClient":
        """The single-endpoint client of one node (made at first use)."""
        sub = self._subs.get(ep)
        if sub is None:
            if self._closed:
                raise RuntimeError("the client is closed")
            curve = self._curve or (None, None, None)
            sub = AsyncClient(ep, timeout=self.timeout, retries=self.retries,
                              curve_server_key=curve[0], curve_public_key=curve[1],
                              curve_secret_key=curve[2], context=self._ctx,
                              cluster=False)
            sub._ids = self._ids
            self._subs[ep] = sub
        return sub

    def _count(self) -> None:
        self.discarded_replies = self._discarded_gone + sum(
            s.discarded_replies for s in self._subs.values())

    async def _current_map(self) -> Optional[ClusterMap]:
        age = time.monotonic() - self._map_at
        if (not self._map_known or self._stale or age >= self.map_max_age
                or (self._map is not None and not self._map.complete()
                    and age >= cl.STALE_AFTER_TIMEOUT)):
            return await self.refresh_map()
        return self._map

    async def _leg(self, targets: Sequence[str], reqs: List[Dict[str, Any]],
                   retry: bool, timeout: Optional[float]) -> List[Reply]:
        """One leg of a routed request: its requests at once to the first
        endpoint, those not answered in time to the next (owner, standby,
        owner, ...): ``max(retries + 1, endpoints)`` attempts when
        ``retry`` allows, else one."""
        wait = self.timeout if timeout is None else timeout
        most = max(self.retries + 1, len(targets)) if retry else 1
        replies: List[Any] = [None] * len(reqs)
        pending = list(range(len(reqs)))
        attempts = 0
        while True:
            turn = attempts % len(targets)
            attempts += 1
            w = wait
            if turn == 0 and len(targets) > 1 and self.failover is not None:
                w = min(wait, self.failover)
            sub = self._sub(targets[turn])
            got = await _gather_all([sub._request(reqs[i], False, w) for i in pending])
            left = []
            for i, g in zip(pending, got):
                if isinstance(g, Timeout):
                    left.append(i)
                elif isinstance(g, BaseException):
                    raise g
                else:
                    replies[i] = g
            self.last_attempts = attempts
            if not left:
                return replies
            if time.monotonic() - self._map_at >= cl.STALE_AFTER_TIMEOUT:
                self._stale = True          # a node may have moved or died
            if attempts >= most:
                raise Timeout("no reply from %s to %r within %gs (%d attempt%s)"
                              % (" or ".join(targets), reqs[left[0]].get("op"), wait,
                                 attempts, "" if attempts == 1 else "s"))
            pending = left

    async def _routed(self, keys: Sequence[Any],
                      make: Callable[[List[int]], List[Dict[str, Any]]],
                      retry: bool, timeout: Optional[float] = None
                      ) -> List[Tuple[List[int], List[Dict[str, Any]], List[Reply]]]:
        """As :meth:`leadscore.Client._routed`: one leg per owner, all at
        once; raises the first leg's error; a "does not hold" refusal
        fetches the map and resends those items, once."""
        todo: List[int] = list(range(len(keys)))
        done: List[Tuple[List[int], List[Dict[str, Any]], List[Reply]]] = []
        try:
            for again in (False, True):
                cmap = await self._current_map()
                legs = [(targets, idx, make(idx))
                        for targets, idx in cl.plan(keys, todo, cmap, self.endpoint)]
                results = await _gather_all([self._leg(t, reqs, retry, timeout)
                                             for t, _, reqs in legs])
                answered, refused, first = cl.sort_legs(
                    legs, results, again, lambda r: isinstance(r, BaseException))
                done.extend(answered)
                if first is not None:
                    raise first
                if not refused:
                    return done
                self._stale = True
                todo = sorted(refused)
        finally:
            self._count()
        raise AssertionError("unreachable")

    async def _route(self, req: Dict[str, Any], retry: bool,
                     timeout: Optional[float] = None) -> Reply:
        """One request in cluster mode: routed by its customer(s), or to the
        home node."""
        kind = cl.routed_request(req)
        if kind == "one":
            parts = await self._routed([req["customer"]], lambda idx: [req], retry, timeout)
            return parts[0][2][0]
        if kind == "many":
            ids = req["customers"]
            parts = await self._routed(
                ids, lambda idx: [dict(req, customers=[ids[i] for i in idx])], retry, timeout)
            return cl.merge_score([(idx, replies[0]) for idx, _, replies in parts], len(ids))
        if kind == "track":
            evs = req["events"]
            parts = await self._routed(
                [cl.event_customer(e) for e in evs],
                lambda idx: [dict(req, events=[evs[i] for i in idx])], retry, timeout)
            return cl.merge_track([(idx, replies[0]) for idx, _, replies in parts])
        return await self._request(req, retry, timeout)

    # -- exchange --------------------------------------------------------

    async def _attempt(self, sock: zmq.asyncio.Socket, frames: List[bytes],
                       fut: asyncio.Future) -> Dict[str, Any]:
        await sock.send_multipart(frames)
        return await fut

    async def _request(self, req: Mapping[str, Any], retry: bool,
                       timeout: Optional[float] = None) -> Reply:
        """Send one request; re-send it after a timeout when ``retry``
        allows; return the reply without ``ok``/``id`` or raise its error.
        ``timeout``: this call's wait per attempt, instead of
        :attr:`timeout`."""
        if self._routing:
            # Cluster mode: an op for the home node, on its own client.
            if self._closed:
                raise RuntimeError("the client is closed")
            sub = self._sub(self.endpoint)
            try:
                return await sub._request(req, retry, timeout)
            finally:
                self.last_attempts = sub.last_attempts
                self._count()
        wait = self.timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        attempts = 0
        while True:
            attempts += 1
            sock = self._ensure()
            rid = next(self._ids)
            frames = c.pack_request(req, rid)
            fut: asyncio.Future = loop.create_future()
            self._waiters[rid] = fut
            self._sizes[rid] = len(frames[1])
            reply: Optional[Dict[str, Any]] = None
            try:
                reply = await asyncio.wait_for(self._attempt(sock, frames, fut),
                                               wait)
            except asyncio.TimeoutError:
                pass
            finally:
                self._waiters.pop(rid, None)
                self._sizes.pop(rid, None)
            if reply is not None:
                self.last_attempts = attempts
                return c.reply_result(reply)
            if not self._waiters and not self._closed:
                self._reset()       # drop the queue; connect afresh next time
            if not retry or attempts > self.retries:
                self.last_attempts = attempts
                raise Timeout("no reply from %s to %r within %gs (%d attempt%s)"
                              % (self.endpoint, req.get("op"), wait,
                                 attempts, "" if attempts == 1 else "s"))

    async def _pipeline(self, reqs: List[Dict[str, Any]], retry: bool) -> List[Reply]:
        """Send every request at once; the replies in request order.  The
        first error cancels the others (their late replies are discarded)."""
        tasks = [asyncio.ensure_future(self._request(r, retry)) for r in reqs]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def call(self, op: str, fields: Optional[Mapping[str, Any]] = None,
                   retry: Optional[bool] = None) -> Reply:
        """Send any op (``fields``: the other request fields) and return the
        reply without ``ok``/``id``.  ``retry`` defaults to whether ``op`` is
        one of :attr:`IDEMPOTENT_OPS`."""
        req, safe = c.call_request(op, fields, retry)
        if self._routing:
            return await self._route(req, safe)
        return await self._request(req, safe)

    # -- ops -------------------------------------------------------------

    async def track(self, events: Union[Event, Iterable[Event]]) -> Reply:
        """Store a batch of events: ``{accepted, duplicates, rejected}``.
        Re-sent after a timeout only when every event has an ``event_id``
        (see :meth:`leadscore.Client.track`)."""
        req, safe = c.track_request(events)
        if self._routing:
            return await self._route(req, safe)
        return await self._request(req, safe)

    async def score(self, customer: str, explain: bool = False,
                    now: Optional[TimeLike] = None) -> Reply:
        """Score one customer (``known: False`` for an unknown id);
        ``explain`` adds the explanation keys, ``now`` (epoch ms or a
        datetime) scores as of then."""
        req = c.score_request(customer, explain, now)
        if self._routing:
            return await self._route(req, True)
        return await self._request(req, True)

    async def score_many(self, customers: Iterable[str], explain: bool = False,
                         now: Optional[TimeLike] = None,
                         batch_size: int = 1000) -> List[Reply]:
        """Score several customers, results in the same order; more than
        ``batch_size`` go as several requests in flight at once."""
        reqs = c.score_many_requests(customers, explain, now, batch_size)
        if not reqs:
            return []
        if self._routing:
            ids = [i for r in reqs for i in r["customers"]]
            base = {k: v for k, v in reqs[0].items() if k != "customers"}
            out: List[Any] = [None] * len(ids)
            for idx, sent, replies in await self._routed(
                    ids, lambda idx: cl.chunk_customers(base, [ids[i] for i in idx],
                                                        batch_size), True):
                for i, r in zip(idx, c.score_many_results(sent, replies)):
                    out[i] = r
            return out
        return c.score_many_results(reqs, await self._pipeline(reqs, True))

    async def recommend(self, customer: str, k: Optional[int] = None,
                        now: Optional[TimeLike] = None) -> Reply:
        """Content segments, best first: ``{customer, segments}``; ``k``
        bounds the list, ``now`` answers as of then."""
        req = c.recommend_request(customer, k, now)
        if self._routing:
            return await self._route(req, True)
        return await self._request(req, True)

    async def profile(self, customer: str,
                      now: Optional[TimeLike] = None) -> Reply:
        """Raw features ``{customer, known, features, ...}``; with ``now``,
        as they were then."""
        req = c.profile_request(customer, now)
        if self._routing:
            return await self._route(req, True)
        return await self._request(req, True)

    async def alias(self, from_id: str, to_id: str) -> Reply:
        """Fold an anonymous id into a customer id: ``{merged}``.  Not
        re-sent on a timeout."""
        return await self._request({"op": "alias", "from": from_id, "to": to_id},
                                   False)

    async def forget(self, customer: str) -> Reply:
        """Erase a customer and its aliases (admin): ``{deleted}``.  Not
        re-sent on a timeout."""
        return await self._request({"op": "forget", "customer": customer}, False)

    async def model(self) -> Reply:
        """The active model: ``name``, ``version``, ``trained_at``, ..."""
        return await self._request({"op": "model"}, True)

    async def reload(self, path: Optional[str] = None) -> Reply:
        """Load a model file atomically (admin): ``{name, version}``.  Not
        re-sent on a timeout."""
        return await self._request(c.reload_request(path), False)

    async def kpis(self, from_ms: Optional[TimeLike] = None,
                   to_ms: Optional[TimeLike] = None) -> Reply:
        """Loyalty KPIs over a period (admin)."""
        return await self._request(c.kpis_request(from_ms, to_ms), True)

    async def stats(self) -> Reply:
        """Server counters, latency percentiles per op, uptime (admin)."""
        return await self._request({"op": "stats"}, True)

    async def ping(self) -> Reply:
        """``{pong: True, version}``."""
        return await self._request({"op": "ping"}, True)

    # -- audiences and triggers --------------------------------------------

    async def audience_put(self, name: str, rule: str) -> Reply:
        """Define or redefine audience ``name`` by ``rule`` (admin):
        ``{created, changed, ready}``; a bad rule raises ``BadRequest`` with its
        column (see :meth:`leadscore.Client.audience_put`).  Not re-sent on
        a timeout."""
        return await self._request(c.audience_put_request(name, rule), False,
                                   self.timeout + c.AUDIENCE_PUT_WAIT)

    async def audience_delete(self, name: str) -> Reply:
        """Delete audience ``name`` (admin): ``{deleted}``.  Not re-sent on
        a timeout."""
        return await self._request({"op": "audience_delete", "name": name}, False)

    async def audience_list(self) -> List[Reply]:
        """Every audience: a list of ``{name, rule, members, ready,
        created}``."""
        return c.audiences_of(await self._request({"op": "audience_list"}, True))

    async def audience_members(self, name: str, limit: Optional[int] = None,
                               cursor: Optional[str] = None) -> Reply:
        """One page of members, in id order: ``{name, ready, members,
        cursor}`` (``cursor`` None on the last page); see
        :meth:`iter_audience_members`."""
        return await self._request(c.audience_members_request(name, limit, cursor), True)

    async def iter_audience_members(self, name: str, page: int = 1000) -> AsyncIterator[str]:
        """Every member id of audience ``name``, in order, fetched ``page``
        at a time (an async generator: ``async for``)."""
        c.check_page_size(page)
        cursor: Optional[str] = None
        while True:
            r = await self.audience_members(name, limit=page, cursor=cursor)
            for member in r.get("members", []):
                yield member
            cursor = r.get("cursor")
            if cursor is None:
                return

    async def triggers(self, from_seq: int = 0, limit: Optional[int] = None,
                       wait_ms: Optional[int] = None) -> Reply:
        """The trigger outbox after ``from_seq``: ``{triggers, next, first,
        last}``; ``wait_ms`` long-polls (see
        :meth:`leadscore.Client.triggers`)."""
        return await self._request(c.triggers_request(from_seq, limit, wait_ms), True,
                                   c.triggers_timeout(self.timeout, wait_ms))

    async def follow_triggers(self, from_seq: int = 0,
                              wait_ms: int = 10000) -> AsyncIterator[Reply]:
        """Every trigger after ``from_seq``, then each new one as it is
        committed, forever (an async generator: ``async for``), resuming
        from the last seq yielded and riding out a restart of the service
        (see :meth:`leadscore.Client.follow_triggers`)."""
        seq = from_seq
        pause = 0.0
        while True:
            asked = time.monotonic()
            try:
                page = await self.triggers(seq, wait_ms=wait_ms)
            except (Timeout, Unavailable):
                pause = min(max(pause * 2, c.FOLLOW_PAUSE_FIRST), c.FOLLOW_PAUSE_MAX)
                await asyncio.sleep(pause)
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
                await asyncio.sleep(c.FOLLOW_EARLY_EMPTY)
