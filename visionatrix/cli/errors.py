"""The one error handler of every command: a failure is one line on stderr and an exit code.

Exit codes: 0 success; 1 Visionatrix refused or failed (a VixError, a ClientError, a failed task,
a local file that cannot be read); 2 the server could not be reached (click's usage errors also
exit 2); 3 a client command's ``--timeout`` expired.
"""

from __future__ import annotations

from typing import Any

import click

from visionatrix.client import ClientError, ServiceUnavailable, Timeout
from visionatrix.errors import VixError

EXIT_CLIENT_ERROR = 1
EXIT_UNREACHABLE = 2
EXIT_TIMEOUT = 3


class Commands(click.Group):
    """A click group whose commands (and sub-groups) fail through :func:`reason_and_code`."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (VixError, ClientError, OSError) as exc:
            reason, code = reason_and_code(exc)
            click.echo(f"error: {first_line(reason)}", err=True)
            raise click.exceptions.Exit(code) from None


def reason_and_code(exc: VixError | ClientError | OSError) -> tuple[str, int]:
    if isinstance(exc, Timeout):
        return f"{exc}; it stays on the server (see: task show {exc.task_id})", EXIT_TIMEOUT
    if isinstance(exc, ServiceUnavailable):
        return str(exc), EXIT_UNREACHABLE
    if isinstance(exc, VixError):
        return exc.message, EXIT_CLIENT_ERROR
    if isinstance(exc, OSError):  # a --file that cannot be read, an --out that cannot be written
        return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), EXIT_CLIENT_ERROR
    return str(exc), EXIT_CLIENT_ERROR


def first_line(reason: str) -> str:
    lines = [line.strip() for line in reason.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown failure"
