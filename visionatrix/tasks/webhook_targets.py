"""Where a webhook may go, and with which headers.

A webhook makes the server send a request on a caller's behalf. In SERVER mode it may reach
only public addresses: a URL whose host resolves to a loopback, private, link-local,
unspecified, multicast or reserved address (IPv4, IPv6, IPv4 inside IPv6; numeric spellings
such as ``2130706433`` resolve like any name) is refused, unless its host or network is on
``VIX_WEBHOOK_ALLOWLIST``. DEFAULT mode, a developer's own machine, may also call loopback and
private addresses. The check runs when the task is created and again before every call (a
name can resolve elsewhere by then), and the call goes to the very address that was checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from visionatrix.errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# headers that describe the connection or the body framing are the server's to set
_REFUSED_HEADERS = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer",
        "upgrade", "proxy-connection", "proxy-authenticate", "proxy-authorization", "expect",
    }
)  # fmt: skip
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$")
_VALUE = re.compile(r"^[\t\x20-\x7e]{0,4096}$")
MAX_HEADERS = 32


@dataclass(frozen=True)
class Target:
    """A checked webhook address: connect to ``url`` (the address), present ``host`` (the name)."""

    url: str
    host_header: str
    sni_hostname: str | None


class WebhookTargets:
    def __init__(
        self, *, allow_private: bool, allowlist: Iterable[str] = (), resolve_timeout: float = 5.0
    ) -> None:
        self.allow_private = allow_private
        self.hosts, self.networks = _parse_allowlist(allowlist)
        self.resolve_timeout = resolve_timeout

    async def check(self, url: str) -> None:
        """``InvalidInput`` naming the problem when ``url`` may not receive webhooks."""
        await self.target(url)

    async def target(self, url: str) -> Target:
        parsed = _parse(url)
        host = parsed.host.lower().rstrip(".")
        addresses = await self._resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80))
        if host not in self.hosts:
            for address in addresses:
                self._judge(host, address)
        return _target(parsed, addresses[0])

    async def _resolve(self, host: str, port: int) -> list[Address]:
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM),
                self.resolve_timeout,
            )
        except (OSError, TimeoutError, UnicodeError) as exc:
            raise InvalidInput(f"webhook_url host {host!r} does not resolve") from exc
        found = [_address(str(info[4][0])) for info in infos]
        if not found:
            raise InvalidInput(f"webhook_url host {host!r} does not resolve")
        return found

    def _judge(self, host: str, address: Address) -> None:
        kind = classify(address)
        if kind is None or any(address in net for net in self.networks):
            return
        if self.allow_private and kind in ("loopback", "private"):
            return
        raise InvalidInput(
            f"webhook_url host {host!r} resolves to {address}, a {kind} address; webhooks go only to "
            "public addresses (list trusted hosts or networks in VIX_WEBHOOK_ALLOWLIST)"
        )


def classify(address: Address) -> str | None:
    """What kind of non-public address this is (embedded IPv4 judged too); None when public."""
    for inner in _embedded(address):
        kind = classify(inner)
        if kind:
            return kind
    for kind, test in (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if test:
            return kind
    return None if address.is_global else "reserved"


def _embedded(address: Address) -> list[Address]:
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    inner: list[Address | None] = [address.ipv4_mapped, address.sixtofour]
    if address.teredo:
        inner += list(address.teredo)
    return [a for a in inner if a is not None]


def checked_headers(headers: Any) -> dict[str, str]:
    """The webhook headers, if they are a JSON object of safe ASCII header names and values."""
    if not isinstance(headers, Mapping):
        raise InvalidInput("'webhook_headers' must be a JSON object of header names to string values")
    if len(headers) > MAX_HEADERS:
        raise InvalidInput(f"'webhook_headers' has {len(headers)} headers; at most {MAX_HEADERS} are allowed")
    clean = {}
    for name, value in headers.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise InvalidInput(f"webhook header {name!r} must have a string value")
        text = str(value)
        if not _TOKEN.match(name):
            raise InvalidInput(f"webhook header name {name!r} is not a valid HTTP header name")
        if not _VALUE.match(text):
            raise InvalidInput(
                f"webhook header {name!r} must be printable ASCII, no line breaks, at most 4096 characters"
            )
        if name.lower() in _REFUSED_HEADERS:
            raise InvalidInput(f"webhook header {name!r} is set by the server and cannot be given")
        clean[name] = text
    return clean


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise InvalidInput(f"webhook_url is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise InvalidInput("webhook_url must be an http:// or https:// URL")
    if not parsed.host:
        raise InvalidInput("webhook_url has no host")
    return parsed


def _address(text: str) -> Address:
    return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone


def _target(parsed: httpx.URL, address: Address) -> Target:
    host_header = parsed.netloc.decode("ascii")
    sni = parsed.host if parsed.scheme == "https" else None
    return Target(str(parsed.copy_with(host=str(address))), host_header, sni)


def _parse_allowlist(entries: Iterable[str]) -> tuple[frozenset[str], tuple[Network, ...]]:
    hosts, networks = set(), []
    for raw in entries:
        entry = raw.strip().lower().rstrip(".").strip("[]")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry)
    return frozenset(hosts), tuple(networks)
