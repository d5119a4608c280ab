"""Cluster mode: the partition function, the cluster map, and the pieces
shared by :class:`~leadscore.Client` and :class:`~leadscore.AsyncClient`
to route per-customer requests to the node that owns the customer's
partition (split a request by owner, merge the replies back).

A cluster of leadscore nodes splits the customers into ``P`` partitions::

    h = FNV-1a 64 over the id's UTF-8 bytes
    p = fmix64(h) mod P

Every node answers the ``cluster`` op with the map: for each partition the
endpoint of its owner and of its standby.  A client given several
endpoints asks the first one that answers for it, then sends each
customer's reads straight to the owner (one hop), to the standby when the
owner does not answer.
"""

from __future__ import annotations

import functools
from typing import (Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence,
                    Tuple, Union)

from .errors import LeadscoreError, ProtocolError

__all__ = ["HASH_NAME", "partition_hash", "partition_of", "ClusterMap",
           "parse_endpoints"]

#: the only partition function this client knows (the ``hash`` field of
#: the ``cluster`` reply)
HASH_NAME = "fnv1a64-fmix64"

_MASK = (1 << 64) - 1
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211

#: ops whose request names one ``customer`` and that only read
ROUTED_READS = frozenset(("score", "profile", "recommend"))

#: a map older than this is fetched again before the next routed request
#: (seconds).  Nodes forward a read they do not hold to its owner, so a
#: client on an old map still gets answers, at one more hop: this bounds
#: how long it pays that hop after a partition moved.
MAP_MAX_AGE = 30.0

#: the least time between two map refreshes caused by a timed-out node or
#: by a map that lacks endpoints (seconds); a "does not hold" refusal
#: refreshes at once
STALE_AFTER_TIMEOUT = 1.0


@functools.lru_cache(maxsize=1 << 16)
def _hash(customer_id: str, mask: int = _MASK, prime: int = _FNV_PRIME) -> int:
    # Pure Python, about 1.5 us for a 15-byte id: the recently seen ids
    # are cached (a storefront asks about the same customers again).
    h = _FNV_OFFSET
    for b in customer_id.encode("utf-8"):
        h = ((h ^ b) * prime) & mask
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & mask
    h ^= h >> 33
    h = (h * 0xc4ceb9fe1a85ec53) & mask
    return h ^ (h >> 33)


def partition_hash(customer_id: str) -> int:
    """The 64-bit hash a customer id is partitioned by:
    ``fmix64(fnv1a64(utf8(customer_id)))``."""
    if not isinstance(customer_id, str):
        raise TypeError("a customer id is a str, not %s" % type(customer_id).__name__)
    return _hash(customer_id)


def partition_of(customer_id: str, partitions: int) -> int:
    """The partition (0 .. ``partitions`` - 1) of a customer id in a
    cluster of ``partitions`` partitions: :func:`partition_hash` modulo
    ``partitions``.  The same function as the server's
    ``src/partition.c``."""
    if not isinstance(customer_id, str):
        raise TypeError("a customer id is a str, not %s" % type(customer_id).__name__)
    if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
        raise ValueError("partitions must be a whole number >= 1")
    return _hash(customer_id) % partitions


def parse_endpoints(endpoints: Union[str, Iterable[str]]) -> List[str]:
    """The endpoint list of a ``Client(endpoint)`` argument: one endpoint,
    a comma-separated string of several, or a list of them.  Blanks are
    trimmed, repeats dropped; at least one is needed."""
    if isinstance(endpoints, str):
        items: List[Any] = endpoints.split(",")
    elif isinstance(endpoints, (bytes, bytearray)):
        raise TypeError("endpoints are str, not bytes")
    else:
        items = list(endpoints)
    out: List[str] = []
    for e in items:
        if not isinstance(e, str):
            raise TypeError("an endpoint is a str like tcp://host:5555, not %r" % (e,))
        e = e.strip()
        if e and e not in out:
            out.append(e)
    if not out:
        raise ValueError("no endpoint given")
    return out


class ClusterMap:
    """A cluster's partition map, as a node's ``cluster`` reply gave it.

    ``cluster`` (its name), ``node`` (the node that answered), ``epoch``
    (grows with every change of owners), ``partitions`` (P), ``owners``
    and ``standbys`` (an endpoint per partition; a standby is ``""`` when
    there is none), ``source`` (the endpoint that answered)."""

    def __init__(self, cluster: str, node: str, epoch: int, partitions: int,
                 owners: Sequence[str], standbys: Sequence[str],
                 source: str = "") -> None:
        self.cluster = cluster
        self.node = node
        self.epoch = epoch
        self.partitions = partitions
        self.owners = list(owners)
        self.standbys = list(standbys)
        self.source = source
        self._routes: Dict[str, Tuple[Tuple[str, ...], ...]] = {}

    @classmethod
    def from_reply(cls, reply: Mapping[str, Any], source: str = "") -> Optional["ClusterMap"]:
        """The map of a ``cluster`` reply; None for a single node (``mode``
        ``"single"``).  Raises :class:`~leadscore.ProtocolError` for a reply
        this client cannot route by (another ``hash``, lists of the wrong
        length)."""
        mode = reply.get("mode")
        if mode == "single":
            return None
        if mode != "cluster":
            raise ProtocolError("cluster reply from %s has mode %r (expected "
                                "\"single\" or \"cluster\")" % (source, mode))
        if reply.get("hash") != HASH_NAME:
            raise ProtocolError("cluster reply from %s: partition hash %r, this "
                                "client knows only %r" % (source, reply.get("hash"),
                                                          HASH_NAME))
        parts = reply.get("partitions")
        owners = reply.get("owners")
        standbys = reply.get("standbys")
        if standbys is None:
            standbys = [""] * (parts if isinstance(parts, int) else 0)
        if (not isinstance(parts, int) or isinstance(parts, bool) or parts < 1
                or not isinstance(owners, list) or len(owners) != parts
                or not isinstance(standbys, list) or len(standbys) != parts
                or not all(isinstance(e, str) for e in owners + standbys)):
            raise ProtocolError("cluster reply from %s has no usable partitions/"
                                "owners/standbys: %r" % (source, dict(reply)))
        epoch = reply.get("epoch")
        return cls(str(reply.get("cluster", "")), str(reply.get("node", "")),
                   epoch if isinstance(epoch, int) else 0, parts, owners,
                   standbys, source)

    def partition(self, customer_id: str) -> int:
        """:func:`partition_of` the id in this cluster."""
        return partition_of(customer_id, self.partitions)

    def targets(self, p: int, home: str) -> List[str]:
        """Where partition ``p``'s requests go, in order: its owner, then
        its standby; ``home`` when the map names neither (a node not yet
        registered)."""
        out = [e for e in (self.owners[p], self.standbys[p]) if e]
        if len(out) == 2 and out[0] == out[1]:
            out.pop()
        return out or [home]

    def routes(self, home: str) -> Tuple[Tuple[str, ...], ...]:
        """:meth:`targets` of every partition, as tuples (computed once per
        home node)."""
        r = self._routes.get(home)
        if r is None:
            r = self._routes[home] = tuple(tuple(self.targets(p, home))
                                           for p in range(self.partitions))
        return r

    def complete(self) -> bool:
        """Whether the map names every partition's owner.  (A node that
        has not yet heard from another one answers ``""`` for its
        partitions, for about a second after the cluster starts.)"""
        return all(self.owners)

    def fill_from(self, other: Optional["ClusterMap"]) -> None:
        """Fill the endpoints this map lacks from another node's map of the
        same epoch."""
        if other is None or other.epoch != self.epoch or other.partitions != self.partitions:
            return
        for p in range(self.partitions):
            if not self.owners[p]:
                self.owners[p] = other.owners[p]
            if not self.standbys[p] and other.owners[p] == self.owners[p]:
                self.standbys[p] = other.standbys[p]
        self._routes.clear()

    def endpoints(self) -> List[str]:
        """Every endpoint the map names, owners first."""
        out: List[str] = []
        for e in self.owners + self.standbys:
            if e and e not in out:
                out.append(e)
        return out

    def __repr__(self) -> str:
        return "ClusterMap(cluster=%r, epoch=%r, partitions=%r, nodes=%d)" % (
            self.cluster, self.epoch, self.partitions, len(self.endpoints()))


# -- routing helpers shared by the sync and asyncio clients ----------------


def not_held(err: BaseException) -> bool:
    """Whether an error is a node refusing a customer whose partition it
    does not hold (the map the client routed by is out of date)."""
    return (isinstance(err, LeadscoreError) and err.code == "unavailable"
            and "does not hold" in (err.message or ""))


def sort_legs(legs: List[Any], results: List[Any], again: bool,
              failed: Callable[[Any], bool]) -> Tuple[List[Any], List[int], Optional[BaseException]]:
    """Sorts the replies of one round of legs (``(targets, idx, reqs)``,
    results in the same order) into the answered legs ``(idx, reqs,
    result)``, the indices a node refused because its map was out of date
    (only in the first round: the caller asks again with a fresh map) and
    the first other failure.  ``failed`` tells a failure from a reply."""
    done: List[Any] = []
    refused: List[int] = []
    first: Optional[BaseException] = None
    for (_, idx, reqs), res in zip(legs, results):
        if not failed(res):
            done.append((idx, reqs, res))
        elif not_held(res) and not again:
            refused.extend(idx)
        elif first is None:
            first = res
    return done, refused, first


def routable(customer: Any) -> bool:
    """Whether an id can be routed (a non-empty str); any other value goes
    to the home node, which answers ``bad_request`` as a single node
    would."""
    return isinstance(customer, str) and customer != ""


#: one leg of a routed request: where it may go (owner first), and the
#: positions of the caller's items it carries
Leg = Tuple[Tuple[str, ...], List[int]]


def plan(keys: Sequence[Any], todo: Iterable[int], cmap: Optional[ClusterMap],
         home: str) -> List[Leg]:
    """Group the positions ``todo`` of ``keys`` (customer ids) by the
    endpoints their partition goes to, in order of first appearance; ids
    that cannot be routed, and everything when there is no map, go to
    ``home``."""
    groups: Dict[Tuple[str, ...], List[int]] = {}
    alone = (home,)
    if cmap is None:
        return [(alone, list(todo))] if todo else []
    routes, parts, h = cmap.routes(home), cmap.partitions, _hash
    for i in todo:
        k = keys[i]
        t = routes[h(k) % parts] if isinstance(k, str) and k else alone
        g = groups.get(t)
        if g is None:
            groups[t] = [i]
        else:
            g.append(i)
    return list(groups.items())


def event_customer(event: Any) -> Any:
    """The ``customer`` of an event map (None for anything else)."""
    return event.get("customer") if isinstance(event, Mapping) else None


class MapGather:
    """The cluster map gathered from the nodes' ``cluster`` replies, as
    ``refresh_map`` asks them one after another: the first answer is the
    map and its node the home node; later answers fill endpoints it lacks
    (a node that has not yet heard of another)."""

    def __init__(self) -> None:
        self.best: Optional[ClusterMap] = None
        self.home = ""
        self.last: Optional[BaseException] = None

    def add(self, reply: Mapping[str, Any], ep: str) -> bool:
        """Takes node ``ep``'s reply; True when the map needs no more."""
        cmap = ClusterMap.from_reply(reply, ep)
        if self.home:
            self.best.fill_from(cmap)           # type: ignore[union-attr]
        else:
            self.best, self.home = cmap, ep
        return self.best is None or self.best.complete()

    def result(self) -> Tuple[Optional[ClusterMap], str]:
        """(map, home endpoint); raises the last error when no node answered."""
        if not self.home:
            assert self.last is not None
            raise self.last
        return self.best, self.home


def chunk_customers(req: Mapping[str, Any], ids: Sequence[Any],
                    batch_size: int) -> List[Dict[str, Any]]:
    """``score`` requests like ``req`` for ``ids``, at most ``batch_size``
    customers each."""
    out = []
    for start in range(0, len(ids), batch_size):
        r = dict(req)
        r["customers"] = list(ids[start:start + batch_size])
        out.append(r)
    return out


def merge_score(parts: Sequence[Tuple[List[int], Mapping[str, Any]]],
                n: int) -> Dict[str, Any]:
    """One ``score`` (``customers``) reply from the legs' replies
    (positions, reply): ``results`` in the caller's order; other keys from
    the first leg."""
    results: List[Any] = [None] * n
    merged: Dict[str, Any] = {}
    for idx, reply in parts:
        for k, v in reply.items():
            if k != "results":
                merged.setdefault(k, v)
        res = reply.get("results")
        if not isinstance(res, list) or len(res) != len(idx):
            raise ProtocolError("score reply has %s results for %d customers"
                                % (len(res) if isinstance(res, list) else "no", len(idx)))
        for i, r in zip(idx, res):
            results[i] = r
    merged["results"] = results
    return merged


def merge_track(parts: Sequence[Tuple[List[int], Mapping[str, Any]]]) -> Dict[str, Any]:
    """One ``track`` reply from the legs' replies (positions of the
    caller's events each leg carried, reply): ``accepted`` and
    ``duplicates`` summed, ``rejected`` re-indexed to the caller's
    positions and sorted, ``log`` maps merged (the highest sequence per
    partition); other keys from the first leg."""
    accepted = duplicates = 0
    rejected: List[Any] = []
    log: Dict[Any, Any] = {}
    has_log = False
    extra: Dict[str, Any] = {}
    for idx, reply in parts:
        a, d = reply.get("accepted", 0), reply.get("duplicates", 0)
        accepted += a if isinstance(a, int) else 0
        duplicates += d if isinstance(d, int) else 0
        for r in reply.get("rejected") or []:
            if isinstance(r, Mapping) and isinstance(r.get("index"), int) \
                    and 0 <= r["index"] < len(idx):
                r = dict(r)
                r["index"] = idx[r["index"]]
            rejected.append(r)
        lg = reply.get("log")
        if isinstance(lg, Mapping):
            has_log = True
            for k, v in lg.items():
                old = log.get(k)
                log[k] = v if old is None or (isinstance(v, int) and isinstance(old, int)
                                              and v > old) else old
        for k, v in reply.items():
            if k not in ("accepted", "duplicates", "rejected", "log"):
                extra.setdefault(k, v)
    rejected.sort(key=lambda r: r.get("index", -1) if isinstance(r, Mapping)
                  and isinstance(r.get("index"), int) else -1)
    merged: Dict[str, Any] = {"accepted": accepted, "duplicates": duplicates,
                              "rejected": rejected}
    if has_log:
        merged["log"] = log
    merged.update(extra)
    return merged


def refresh_candidates(home: str, given: Sequence[str],
                       cmap: Optional[ClusterMap]) -> List[str]:
    """Whom to ask for the map, in order: the home node, the endpoints
    given, then the others the last map named."""
    out: List[str] = []
    for e in [home] + list(given) + (cmap.endpoints() if cmap else []):
        if e and e not in out:
            out.append(e)
    return out


def unneeded(subs: Iterable[str], home: str, given: Sequence[str],
             cmap: Optional[ClusterMap]) -> List[str]:
    """The endpoints of ``subs`` neither the home node, the endpoints
    given nor the map name: nodes a client may close (one restarted under
    a new address would otherwise keep its socket for good)."""
    keep = set(refresh_candidates(home, given, cmap))
    return [e for e in subs if e not in keep]


def routed_request(req: Mapping[str, Any]) -> Optional[str]:
    """How a request is routed in cluster mode: ``"one"`` (a read of one
    customer), ``"many"`` (``score`` of ``customers``), ``"track"``, or
    None (to the home node)."""
    op = req.get("op")
    if op == "score" and isinstance(req.get("customers"), list) and req["customers"]:
        return "many"
    if op in ROUTED_READS and "customers" not in req and routable(req.get("customer")):
        return "one"
    if op == "track" and isinstance(req.get("events"), list) and req["events"]:
        return "track"
    return None
