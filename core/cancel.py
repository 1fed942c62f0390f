"""Cancellation, one way for every long job (slide engine, exports, FFA, few-shot, fine-tuning).

A job takes a cancel token ``cancel``: a ``threading.Event`` (the GUI's Cancel button sets it) or
a callable returning True once the job should stop, or None. It polls the token between units
of work (tile batches, slices, iterations) with :func:`is_cancelled` or :func:`check_cancelled`
and stops by raising :class:`Cancelled`, leaving no partial output.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

CancelFlag = threading.Event | Callable[[], bool] | None


class Cancelled(Exception):
    """The user cancelled the job; nothing was written."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)


def is_cancelled(cancel: CancelFlag) -> bool:
    """True once the token is set (an Event) or returns True (a callable); False for None."""
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def check_cancelled(cancel: CancelFlag, message: str = "cancelled") -> None:
    """Raise :class:`Cancelled` (with ``message``) once the token is set."""
    if is_cancelled(cancel):
        raise Cancelled(message)
