"""Keep uvicorn's access log for people: an idle worker's empty long poll is not news.

Every idle worker asks ``POST /vapi/tasks/next?wait=25`` and hears ``204`` (no task) about every
25 s; at the default level those lines would drown the requests a person wants to see. They are
still logged with ``-vv`` (debug), where every request matters.
"""

from __future__ import annotations

import logging

_NEXT_TASK = "/vapi/tasks/next"


def is_empty_long_poll(record: logging.LogRecord) -> bool:
    """uvicorn's access record: args = (client, method, path with query, http version, status)."""
    args = record.args
    if not isinstance(args, tuple) or len(args) != 5:
        return False
    _client, method, path, _version, status = args
    return status == 204 and method == "POST" and str(path).split("?", 1)[0] == _NEXT_TASK


def _drop_empty_long_polls(record: logging.LogRecord) -> bool:
    return not is_empty_long_poll(record)


def quiet_idle_workers() -> None:
    """Drop the empty long polls from ``uvicorn.access`` unless debug logging is on."""
    if logging.getLogger("visionatrix").isEnabledFor(logging.DEBUG):
        return
    logger = logging.getLogger("uvicorn.access")
    if _drop_empty_long_polls not in logger.filters:
        logger.addFilter(_drop_empty_long_polls)
