"""The fire-and-forget :class:`Pusher` for the service's PULL socket."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Union

import msgpack
import zmq

from . import _common as c
from ._common import DEFAULT_PULL_ENDPOINT, CurveKey, Event
from .errors import Timeout

__all__ = ["Pusher"]


class Pusher:
    """Fire-and-forget event batches to the service's PULL socket.

    No acknowledgement: ZeroMQ queues batches while the service is away and
    its back-pressure keeps a fast tracker from losing events while the
    service runs, but a crash (of either side) loses what was queued, and a
    batch the server refuses is dropped silently.  Use
    :meth:`leadscore.Client.track` when you need to know.

    ``timeout``: how long :meth:`push` may wait on a full send queue before
    raising :class:`~leadscore.Timeout`; ``linger``: how long :meth:`close`
    waits to flush queued batches.  CurveZMQ keys as for
    :class:`~leadscore.Client`.  Not thread-safe.
    """

    def __init__(self, endpoint: str = DEFAULT_PULL_ENDPOINT,
                 timeout: float = 2.0, linger: float = 2.0,
                 curve_server_key: Optional[CurveKey] = None,
                 curve_public_key: Optional[CurveKey] = None,
                 curve_secret_key: Optional[CurveKey] = None,
                 context: Optional[zmq.Context] = None) -> None:
        """Connect a PUSH socket to ``endpoint``."""
        self.endpoint = endpoint
        self.timeout = float(timeout)
        self.linger = float(linger)
        curve = c.curve_options(curve_server_key, curve_public_key,
                                curve_secret_key)
        self._ctx = context if context is not None else zmq.Context.instance()
        sock = self._ctx.socket(zmq.PUSH)
        try:
            sock.setsockopt(zmq.LINGER, int(self.linger * 1000))
            sock.setsockopt(zmq.SNDTIMEO, int(self.timeout * 1000))
            c.apply_curve(sock, curve)
            sock.connect(endpoint)
        except Exception:
            sock.close(0)
            raise
        self._sock: Optional[zmq.Socket] = sock

    @classmethod
    def from_key_files(cls, endpoint: str, server_pub_path: str,
                       client_key_prefix: str, **kwargs: Any) -> "Pusher":
        """A CurveZMQ pusher from ``leadscore keygen`` files."""
        kwargs.update(c.key_files(server_pub_path, client_key_prefix))
        return cls(endpoint, **kwargs)

    def push(self, events: Union[Event, Iterable[Event]],
             batch_size: int = 10000) -> int:
        """Queue events as ``{"op": "track", "events": [...]}`` messages of at
        most ``batch_size`` events (the server's ``--max-batch``).  Returns
        the number of messages queued."""
        if self._sock is None:
            raise RuntimeError("the pusher is closed")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        req, _ = c.track_request(events)
        evs = req["events"]
        sent = 0
        for start in range(0, len(evs), batch_size):
            body = msgpack.packb({"op": "track",
                                  "events": evs[start:start + batch_size]},
                                 use_bin_type=True)
            try:
                self._sock.send(body)
            except zmq.Again:
                raise Timeout("send queue to %s full for %gs (%d of %d "
                              "batches queued)" % (
                                  self.endpoint, self.timeout, sent,
                                  -(-len(evs) // batch_size))) from None
            sent += 1
        return sent

    def close(self, linger: Optional[float] = None) -> None:
        """Close, waiting up to ``linger`` seconds (default: the pusher's) for
        queued batches to go out."""
        if self._sock is not None:
            ms = int((self.linger if linger is None else linger) * 1000)
            self._sock.close(ms)
            self._sock = None

    def __enter__(self) -> "Pusher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
