"""JSON over HTTP to a provider: timeouts, bounded retries, and errors that name the provider.

A request is retried (at most ``attempts`` times in all, with a short exponential backoff, or the
provider's ``Retry-After`` up to a cap) only when it cannot have been answered yet: the
connection failed, or the provider said it is overloaded or briefly away (429, 502, 503, 504).
A read timeout is not retried: the provider may still be generating, and a second wait would
double the hang the caller is guarding against.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from visionatrix.errors import ProviderError, ProviderTimeout

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER = 10.0


class Transport:
    def __init__(
        self,
        provider: str,
        *,
        timeout: float,
        proxy: str = "",
        attempts: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.provider = provider
        self.timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))
        self.seconds = timeout
        self.proxy = proxy or None
        self.attempts = max(1, attempts)
        self.backoff = backoff

    def post(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Any:
        return self._send("POST", url, headers, body)

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Any:
        return self._send("GET", url, headers, None)

    def _send(
        self, method: str, url: str, headers: Mapping[str, str] | None, body: Mapping[str, Any] | None
    ) -> Any:
        where = _origin(url)
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            try:
                with httpx.Client(timeout=self.timeout, proxy=self.proxy) as client:
                    response = client.request(method, url, headers=headers, json=body)
            except httpx.ConnectTimeout as exc:
                if last:
                    raise ProviderTimeout(self.provider, f"could not connect to {where} in time") from exc
                self._pause(attempt, None, f"connect timeout to {where}")
                continue
            except httpx.TimeoutException as exc:
                raise ProviderTimeout(
                    self.provider, f"no answer from {where} within {self.seconds:g} s (llm_timeout)"
                ) from exc
            except httpx.TransportError as exc:
                if last:
                    raise ProviderError(self.provider, f"cannot reach {where}: {_describe(exc)}") from exc
                self._pause(attempt, None, f"{where}: {_describe(exc)}")
                continue
            if response.status_code in RETRY_STATUSES and not last:
                self._pause(attempt, response.headers.get("retry-after"), f"HTTP {response.status_code}")
                continue
            return self._decode(response, where)
        raise AssertionError("unreachable")  # the last attempt always returns or raises

    def _pause(self, attempt: int, retry_after: str | None, why: str) -> None:
        delay = self.backoff * 2 ** (attempt - 1)
        if retry_after:
            try:
                delay = min(MAX_RETRY_AFTER, max(0.0, float(retry_after)))
            except ValueError:
                pass
        log.warning("%s: %s; retrying in %.2f s (attempt %d)", self.provider, why, delay, attempt + 1)
        time.sleep(delay)

    def _decode(self, response: httpx.Response, where: str) -> Any:
        if response.is_error:
            raise ProviderError(
                self.provider, f"{error_message(response)} (HTTP {response.status_code} from {where})"
            )
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProviderError(self.provider, f"{where} answered with something that is not JSON") from exc


def error_message(response: httpx.Response) -> str:
    """The provider's own words: Ollama's ``{"error": "..."}``, Gemini's and OpenAI's
    ``{"error": {"message": ...}}``, else the start of the body."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text.strip()[:300] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        return error
    if isinstance(error, dict) and error.get("message"):
        status = error.get("status") or error.get("type") or ""
        return f"{error['message']}" + (f" ({status})" if status else "")
    return json.dumps(body)[:300]


def _origin(url: str) -> str:
    # scheme://host:port only: paths may carry model names, never a key, but keep messages short
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _describe(exc: httpx.TransportError) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
