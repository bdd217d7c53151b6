"""Dispatch errors."""

from __future__ import annotations

from parley.bus import ErrorCode, RpcError


class DispatchError(Exception):
    """Root of dispatch errors."""


class ProtocolViolation(DispatchError):
    """A worker sent something the worker protocol does not allow here."""


class UnknownWorker(DispatchError):
    """No worker (or no longer) with that id or connection."""


def not_found(what: str) -> RpcError:
    return RpcError(ErrorCode.NOT_FOUND, what)


def invalid(what: str) -> RpcError:
    return RpcError(ErrorCode.INVALID_ARGUMENT, what)
