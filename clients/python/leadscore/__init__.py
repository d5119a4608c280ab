"""Python client for the leadscore service.

The wire contract is ``docs/PROTOCOL.md``: one msgpack map per request and
reply on a ZeroMQ ROUTER socket, an ``id`` echoed in every reply, ``ok`` or
``error {code, message}``.

    from leadscore import Client

    with Client("tcp://127.0.0.1:5555") as ls:
        ls.track([{"customer": "alice", "type": "add_to_cart",
                   "price": 40.0, "event_id": "e-1"}])
        print(ls.score("alice")["score"])

* :class:`Client` -- synchronous request/reply, one request (or one
  pipelined batch) at a time; one per thread.
* :class:`AsyncClient` -- the same ops as coroutines over pyzmq's asyncio
  sockets; many requests in flight, matched by id.
* :class:`Pusher` -- fire-and-forget event batches to the PULL socket.
* cluster mode: ``Client([ep1, ep2, ep3])`` (or ``AsyncClient``) routes
  each customer's requests to the node owning its partition, by the map
  the nodes publish (:class:`ClusterMap`, :func:`partition_of`).
* :class:`LeadscoreError` and one subclass per wire error code
  (:class:`BadRequest`, :class:`UnknownOp`, :class:`TooLarge`,
  :class:`Unauthorized`, :class:`Unavailable`, :class:`Internal`), plus
  :class:`Timeout` and :class:`ProtocolError`.

Needs pyzmq and msgpack (Debian: ``python3-zmq``, ``python3-msgpack``).
"""

from ._common import (DEFAULT_ENDPOINT, DEFAULT_PULL_ENDPOINT, IDEMPOTENT_OPS,
                      CurveKey, Event, Reply, TimeLike, read_key_file)
from .aio import AsyncClient
from .client import Client
from .cluster import HASH_NAME, ClusterMap, partition_hash, partition_of
from .errors import (ERROR_CLASSES, BadRequest, Internal, LeadscoreError,
                     ProtocolError, Timeout, TooLarge, Unauthorized,
                     Unavailable, UnknownOp, error_class, error_from_reply)
from .pusher import Pusher

__version__ = "0.1.0"

__all__ = [
    "Client", "AsyncClient", "Pusher",
    "LeadscoreError", "BadRequest", "UnknownOp", "TooLarge", "Unauthorized",
    "Unavailable", "Internal", "Timeout", "ProtocolError",
    "ERROR_CLASSES", "error_class", "error_from_reply",
    "read_key_file", "DEFAULT_ENDPOINT", "DEFAULT_PULL_ENDPOINT",
    "IDEMPOTENT_OPS", "Reply", "Event", "TimeLike", "CurveKey",
    "ClusterMap", "partition_of", "partition_hash", "HASH_NAME",
    "__version__",
]
