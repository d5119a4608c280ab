"""Exceptions raised by the leadscore clients.

Every error a server reports (a reply with ``ok: false``) raises the
:class:`LeadscoreError` subclass of its wire code (``docs/PROTOCOL.md``
section 1.4); failures the client detects itself raise :class:`Timeout` or
:class:`ProtocolError`.  Each exception carries ``code`` (the wire code, or
``"timeout"`` / ``"protocol"``) and ``message`` (the server's English text,
meant for people: match on the class or ``code``, never on the message).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple, Type

__all__ = [
    "LeadscoreError", "BadRequest", "UnknownOp", "TooLarge", "Unauthorized",
    "Unavailable", "Internal", "Timeout", "ProtocolError",
    "ERROR_CLASSES", "error_class", "error_from_reply",
]


def _rebuild(cls: Type["LeadscoreError"], code: str, message: str) -> "LeadscoreError":
    err = cls.__new__(cls)
    LeadscoreError.__init__(err, code, message)
    return err


class LeadscoreError(Exception):
    """A request failed.

    ``code`` is the wire error code (``bad_request``, ``unknown_op``,
    ``too_large``, ``unauthorized``, ``unavailable``, ``internal``; or
    ``timeout`` / ``protocol`` for failures the client detected), and
    ``message`` the explanation.  A code newer than this client raises
    :class:`LeadscoreError` itself, with that code.
    """

    #: the wire code of this class (None on the base class)
    code: Optional[str] = None
    #: True when the same request may succeed later unchanged
    retryable: bool = False

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return "%s: %s" % (self.code, self.message)

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_rebuild, (type(self), self.code, self.message))


class BadRequest(LeadscoreError):
    """``bad_request``: not msgpack or not a map, a missing, unknown or
    ill-typed field, a value out of range, an ``alias`` that is refused, a
    ``reload`` that failed (the old model stays), an audience rule that
    does not parse (the message gives the column), an unknown audience."""

    code = "bad_request"


class UnknownOp(LeadscoreError):
    """``unknown_op``: the server implements no op of that name."""

    code = "unknown_op"


class TooLarge(LeadscoreError):
    """``too_large``: a frame over ``--max-frame``, a batch over
    ``--max-batch``, more than ``--max-customers`` ids, an id over
    ``--max-string``."""

    code = "too_large"


class Unauthorized(LeadscoreError):
    """``unauthorized``: under CurveZMQ, a client-role key called an admin
    op (``reload``, ``forget``, ``stats``, ``kpis``, ``audience_put``,
    ``audience_delete``)."""

    code = "unauthorized"


class Unavailable(LeadscoreError):
    """``unavailable``: the server is shutting down or busy, too many
    ``kpis`` scans run, or the store is full.  Nothing of the request was
    stored; retry later."""

    code = "unavailable"
    retryable = True


class Internal(LeadscoreError):
    """``internal``: the server failed (a commit, out of memory, ...).
    Nothing of the request was stored; it may be retried later."""

    code = "internal"
    retryable = True


class Timeout(LeadscoreError):
    """No reply in time, after every attempt the call allowed.  For a
    request that changes the store (``track`` without event ids,
    ``alias``, ``forget``, ``reload``) it may or may not have been carried
    out."""

    code = "timeout"
    retryable = True

    def __init__(self, message: str) -> None:
        super().__init__("timeout", message)


class ProtocolError(LeadscoreError):
    """The reply broke the wire contract (not msgpack, not a map, an
    ``ok: false`` without an ``error`` map, a ``results`` list of the wrong
    length)."""

    code = "protocol"

    def __init__(self, message: str) -> None:
        super().__init__("protocol", message)


#: wire code -> exception class, for the codes of the wire contract
ERROR_CLASSES: Dict[str, Type[LeadscoreError]] = {
    "bad_request": BadRequest,
    "unknown_op": UnknownOp,
    "too_large": TooLarge,
    "unauthorized": Unauthorized,
    "unavailable": Unavailable,
    "internal": Internal,
}


def error_class(code: str) -> Type[LeadscoreError]:
    """The exception class for a wire code (:class:`LeadscoreError` for a
    code this client does not know)."""
    return ERROR_CLASSES.get(code, LeadscoreError)


def error_from_reply(reply: Mapping[str, Any]) -> LeadscoreError:
    """The exception for an ``ok: false`` reply map (not raised)."""
    err = reply.get("error")
    if not isinstance(err, Mapping):
        return ProtocolError("reply has ok=%r and no error map: %r"
                             % (reply.get("ok"), reply))
    code = err.get("code")
    message = err.get("message", "")
    cls = ERROR_CLASSES.get(code) if isinstance(code, str) else None
    if cls is None:
        # A code added to the contract after this client: keep it visible.
        return LeadscoreError(str(code), str(message))
    return cls(code, str(message))
