"""Pieces shared by the sync and asyncio clients: CurveZMQ keys, time
conversion, request maps, reply decoding.  Private: import from
:mod:`leadscore`."""

from __future__ import annotations

import datetime
from typing import (Any, Dict, Iterable, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import msgpack
import zmq
from zmq.utils import z85

from .errors import ProtocolError, error_from_reply

#: the service's default request (ROUTER) endpoint
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
#: the service's default fire-and-forget (PULL) endpoint
DEFAULT_PULL_ENDPOINT = "tcp://127.0.0.1:5556"

#: a reply map (without ``ok`` and ``id``)
Reply = Dict[str, Any]
#: one event map (``customer``, ``type``, ``event_id``, ``ts``, ...)
Event = Mapping[str, Any]
#: a point in time: Unix epoch milliseconds, or a datetime
TimeLike = Union[int, float, datetime.datetime]
#: a CurveZMQ key: 40 characters of Z85 text, or 32 raw bytes
CurveKey = Union[str, bytes]
#: checked CurveZMQ options: (server, public, secret) as bytes
CurveOpts = Optional[Tuple[bytes, bytes, bytes]]

#: ops that only read: always safe to send again
IDEMPOTENT_OPS = frozenset(
    ("score", "recommend", "profile", "model", "kpis", "stats", "ping",
     "audience_list", "audience_members", "triggers"))

#: the longest an ``audience_put`` reply waits for the audience's first
#: pass over the store (seconds); the call's timeout is this on top
AUDIENCE_PUT_WAIT = 5.0

#: ``follow_triggers``: the first pause after the service did not answer,
#: doubled after each further miss up to :data:`FOLLOW_PAUSE_MAX` (seconds)
FOLLOW_PAUSE_FIRST = 0.5
FOLLOW_PAUSE_MAX = 10.0
#: ``follow_triggers``: an empty page that came back sooner than half its
#: ``wait_ms`` (the server could not hold the request) is followed by this
#: pause, so a loop never spins (seconds)
FOLLOW_EARLY_EMPTY = 0.2

MISSING: Any = object()


# -- CurveZMQ keys ---------------------------------------------------------


def read_key_file(path: str) -> str:
    """Return the Z85 key held in a file written by ``leadscore keygen``
    (``PREFIX.pub`` or ``PREFIX.key``): the first line that is neither blank
    nor a ``#`` comment.  Raises ``ValueError`` when there is none or it is
    not a valid key."""
    with open(path, "r", encoding="ascii") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                check_key(line, path)
                return line
    raise ValueError("%s: no key in the file (only blank or # lines)" % path)


def check_key(key: Any, what: str) -> bytes:
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


def curve_options(server_key: Optional[CurveKey], public_key: Optional[CurveKey],
                  secret_key: Optional[CurveKey]) -> CurveOpts:
    """Check the three keys; return None (plain) or a (server, public,
    secret) tuple of bytes."""
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
    return (check_key(server_key, "curve_server_key"),
            check_key(public_key, "curve_public_key"),
            check_key(secret_key, "curve_secret_key"))


def apply_curve(sock: Any, curve: CurveOpts) -> None:
    """Set the CurveZMQ client options on a socket (before connect)."""
    if curve is not None:
        server, public, secret = curve
        sock.setsockopt(zmq.CURVE_SERVERKEY, server)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)


def key_files(server_pub_path: str, client_key_prefix: str) -> Dict[str, str]:
    """The three ``curve_*`` keyword arguments from ``leadscore keygen``
    files."""
    return dict(curve_server_key=read_key_file(server_pub_path),
                curve_public_key=read_key_file(client_key_prefix + ".pub"),
                curve_secret_key=read_key_file(client_key_prefix + ".key"))


def check_timeout(timeout: float, retries: int) -> None:
    if timeout is None or timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    if retries < 0:
        raise ValueError("retries must be >= 0")


# -- request maps -----------------------------------------------------------


def to_ms(t: TimeLike) -> Any:
    """``now``/``from``/``to`` values: a datetime becomes Unix epoch
    milliseconds (a naive one is local time); anything else goes to the
    server as given."""
    if isinstance(t, datetime.datetime):
        if t.tzinfo is None:
            t = t.astimezone()
        return int(round(t.timestamp() * 1000))
    return t


def track_request(events: Union[Event, Iterable[Event]]) -> Tuple[Dict[str, Any], bool]:
    """The ``track`` request, and whether it is safe to re-send (every
    event carries an ``event_id``)."""
    if isinstance(events, Mapping):
        events = [events]
    evs = list(events)
    safe = bool(evs) and all(
        isinstance(e, Mapping) and e.get("event_id") not in (None, "")
        for e in evs)
    return {"op": "track", "events": evs}, safe


def score_request(customer: Any, explain: bool, now: Optional[TimeLike]) -> Dict[str, Any]:
    req: Dict[str, Any] = {"op": "score", "customer": customer}
    if explain:
        req["explain"] = True
    if now is not None:
        req["now"] = to_ms(now)
    return req


def score_many_requests(customers: Iterable[Any], explain: bool,
                        now: Optional[TimeLike], batch_size: int) -> List[Dict[str, Any]]:
    """``score`` requests of at most ``batch_size`` ``customers`` each."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    ids = list(customers)
    reqs = []
    for start in range(0, len(ids), batch_size):
        req: Dict[str, Any] = {"op": "score", "customers": ids[start:start + batch_size]}
        if explain:
            req["explain"] = True
        if now is not None:
            req["now"] = to_ms(now)
        reqs.append(req)
    return reqs


def score_many_results(reqs: Sequence[Mapping[str, Any]],
                       replies: Sequence[Mapping[str, Any]]) -> List[Reply]:
    """Join the ``results`` of the replies to :func:`score_many_requests`."""
    out: List[Reply] = []
    for req, reply in zip(reqs, replies):
        results = reply.get("results")
        if not isinstance(results, list) or len(results) != len(req["customers"]):
            raise ProtocolError("score reply has %s results for %d customers"
                                % (len(results) if isinstance(results, list)
                                   else "no", len(req["customers"])))
        out.extend(results)
    return out


def recommend_request(customer: Any, k: Optional[int],
                      now: Optional[TimeLike]) -> Dict[str, Any]:
    req: Dict[str, Any] = {"op": "recommend", "customer": customer}
    if k is not None:
        req["k"] = k
    if now is not None:
        req["now"] = to_ms(now)
    return req


def profile_request(customer: Any, now: Optional[TimeLike]) -> Dict[str, Any]:
    req: Dict[str, Any] = {"op": "profile", "customer": customer}
    if now is not None:
        req["now"] = to_ms(now)
    return req


def reload_request(path: Optional[str]) -> Dict[str, Any]:
    req: Dict[str, Any] = {"op": "reload"}
    if path is not None:
        req["path"] = path
    return req


def kpis_request(from_ms: Optional[TimeLike], to_ms_: Optional[TimeLike]) -> Dict[str, Any]:
    req: Dict[str, Any] = {"op": "kpis"}
    if from_ms is not None:
        req["from"] = to_ms(from_ms)
    if to_ms_ is not None:
        req["to"] = to_ms(to_ms_)
    return req


def audience_put_request(name: str, rule: str) -> Dict[str, Any]:
    return {"op": "audience_put", "name": name, "rule": rule}


def audience_members_request(name: str, limit: Optional[int],
                             cursor: Optional[str]) -> Dict[str, Any]:
    req: Dict[str, Any] = {"op": "audience_members", "name": name}
    if limit is not None:
        req["limit"] = limit
    if cursor is not None:
        req["cursor"] = cursor
    return req


def audiences_of(reply: Mapping[str, Any]) -> List[Reply]:
    """The ``audiences`` list of an ``audience_list`` reply."""
    audiences = reply.get("audiences")
    if not isinstance(audiences, list):
        raise ProtocolError("audience_list reply has no audiences list: %r" % (reply,))
    return audiences


def check_page_size(page: int) -> None:
    if not isinstance(page, int) or page < 1:
        raise ValueError("page must be a whole number >= 1")


def triggers_request(from_seq: int, limit: Optional[int],
                     wait_ms: Optional[int]) -> Dict[str, Any]:
    req: Dict[str, Any] = {"op": "triggers", "from": from_seq}
    if limit is not None:
        req["limit"] = limit
    if wait_ms is not None:
        req["wait_ms"] = wait_ms
    return req


def triggers_timeout(timeout: float, wait_ms: Optional[int]) -> float:
    """One attempt of a ``triggers`` call waits ``timeout`` on top of the
    time the server may hold it."""
    return timeout + (wait_ms or 0) / 1000.0


def check_triggers_page(reply: Mapping[str, Any]) -> Tuple[List[Reply], int]:
    """The triggers of a ``triggers`` reply and the ``from`` of the next
    call; raises :class:`ProtocolError` for a reply of another shape."""
    triggers = reply.get("triggers")
    nxt = reply.get("next")
    if not isinstance(triggers, list) or not isinstance(nxt, int):
        raise ProtocolError("triggers reply has no triggers list or next: %r" % (reply,))
    return triggers, nxt


def missed_triggers(from_seq: int, reply: Mapping[str, Any]) -> Optional[str]:
    """A warning when triggers after ``from_seq`` left the outbox (by age
    or count, the server's ``--trigger-retention`` / ``--trigger-max``)
    before they were read: the oldest it holds, ``first``, is past
    ``from_seq + 1``."""
    first = reply.get("first")
    if isinstance(first, int) and first > from_seq + 1:
        return ("triggers %d to %d left the outbox before they were read "
                "(the server's --trigger-retention, --trigger-max); continuing with %d"
                % (from_seq + 1, first - 1, first))
    return None


def call_request(op: str, fields: Optional[Mapping[str, Any]],
                 retry: Optional[bool]) -> Tuple[Dict[str, Any], bool]:
    req: Dict[str, Any] = {"op": op}
    if fields:
        req.update(fields)
    return req, (op in IDEMPOTENT_OPS) if retry is None else bool(retry)


# -- wire -------------------------------------------------------------------


def pack_request(req: Mapping[str, Any], rid: int) -> List[bytes]:
    """The DEALER frames of a request: the empty delimiter, then the map
    with its ``id``."""
    msg = dict(req)
    msg["id"] = rid
    return [b"", msgpack.packb(msg, use_bin_type=True)]


def decode_reply(frames: Sequence[bytes]) -> Dict[str, Any]:
    """The reply map of a received message; raises :class:`ProtocolError`."""
    body = frames[-1] if frames else b""
    try:
        reply = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as e:
        raise ProtocolError("reply is not msgpack: %s" % e) from None
    if not isinstance(reply, dict):
        raise ProtocolError("reply is not a map: %r" % (reply,))
    return reply


def reply_result(reply: Dict[str, Any]) -> Reply:
    """The reply without ``ok``/``id``; raises the error of an ``ok: false``
    reply."""
    if reply.get("ok") is not True:
        raise error_from_reply(reply)
    reply.pop("ok", None)
    reply.pop("id", None)
    return reply
