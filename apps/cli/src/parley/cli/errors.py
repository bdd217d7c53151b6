"""Errors of the parley command: each carries the exit code the command ends with."""

from __future__ import annotations


class CliError(Exception):
    """A user-facing failure: printed as ``parley: <message>``, exits with ``exit_code``."""

    exit_code = 1


class UsageError(CliError):
    """Bad arguments (argparse's own exit code)."""

    exit_code = 2


class DevStackError(CliError):
    """Part of the dev stack could not start or died."""

    exit_code = 1


class ApiCallError(CliError):
    """The server refused or failed a Room API call."""

    exit_code = 1
