"""Where webhooks may go: address kinds, numeric spellings, the allowlist, the address a call
connects to, and the headers a caller may set. Names resolve through the system resolver (only
numeric hosts and ``localhost`` are used: they resolve without a network)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from visionatrix.errors import InvalidInput
from visionatrix.tasks.webhook_targets import WebhookTargets, checked_headers, classify


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("10.1.2.3", "private"),
        ("192.168.1.1", "private"),
        ("::ffff:192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "reserved"),  # carrier-grade NAT: not public
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert classify(ipaddress.ip_address(address)) == kind


def _check(targets: WebhookTargets, url: str) -> str:
    try:
        asyncio.run(targets.check(url))
    except InvalidInput as exc:
        return exc.message
    return "ok"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://2130706433:9/hook", "127.0.0.1, a loopback"),
        ("http://0x7f.1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://localhost:9/", "loopback"),
        ("http://[::1]:9/", "loopback"),
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://0.0.0.0:9/", "unspecified"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.0.0.7/", "private"),
        ("ftp://8.8.8.8/", "http:// or https://"),
        ("http:///nohost", "no host"),
        ("https://8.8.8.8/hook", "ok"),
        ("http://[2001:4860:4860::8888]:8080/", "ok"),
    ],
)
def test_server_mode_refuses_all_but_public_addresses(url: str, words: str) -> None:
    answer = _check(WebhookTargets(allow_private=False), url)
    assert words in answer, answer
    if words != "ok":
        assert "VIX_WEBHOOK_ALLOWLIST" in answer or "http" in words or "host" in words


def test_default_mode_calls_loopback_and_private_but_not_metadata() -> None:
    local = WebhookTargets(allow_private=True)
    assert _check(local, "http://127.0.0.1:9/") == "ok"
    assert _check(local, "http://192.168.1.20/") == "ok"
    assert "link-local" in _check(local, "http://169.254.169.254/")
    assert "unspecified" in _check(local, "http://0.0.0.0:9/")


def test_the_allowlist_takes_hosts_and_networks() -> None:
    listed = WebhookTargets(allow_private=False, allowlist=["127.0.0.1", " 10.0.0.0/8 ", "localhost", ""])
    for url in ("http://127.0.0.1:9/", "http://2130706433:9/", "http://10.9.8.7/", "http://localhost:9/"):
        assert _check(listed, url) == "ok", url
    assert "private" in _check(listed, "http://192.168.0.1/")
    assert "loopback" in _check(listed, "http://127.0.0.2/")


def test_a_call_goes_to_the_checked_address_under_the_given_name() -> None:
    listed = WebhookTargets(allow_private=False, allowlist=["localhost"])
    plain = asyncio.run(listed.target("http://localhost:8080/hooks/task-progress?k=1"))
    assert plain.url in (
        "http://127.0.0.1:8080/hooks/task-progress?k=1",
        "http://[::1]:8080/hooks/task-progress?k=1",
    )
    assert (plain.host_header, plain.sni_hostname) == ("localhost:8080", None)
    secure = asyncio.run(WebhookTargets(allow_private=False).target("https://8.8.8.8/x"))
    assert (secure.url, secure.host_header, secure.sni_hostname) == (
        "https://8.8.8.8/x",
        "8.8.8.8",
        "8.8.8.8",
    )


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ([1, 2], "JSON object"),
        ({"Host": "internal"}, "set by the server"),
        ({"content-length": "1"}, "set by the server"),
        ({"Transfer-Encoding": "chunked"}, "set by the server"),
        ({"Connection": "close"}, "set by the server"),
        ({"X-A": "b\r\nX-Injected: 1"}, "no line breaks"),
        ({"X-A\r\nB": "c"}, "not a valid HTTP header name"),
        ({"X-Ä": "c"}, "not a valid HTTP header name"),
        ({"X-A": "ü"}, "printable ASCII"),
        ({"X-A": {"nested": 1}}, "string value"),
        ({f"X-{i}": "v" for i in range(33)}, "at most 32"),
    ],
)
def test_webhook_headers_are_checked(headers: object, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        checked_headers(headers)


def test_good_webhook_headers_pass() -> None:
    assert checked_headers({"Authorization": "Bearer t0k", "X-Count": 3}) == {
        "Authorization": "Bearer t0k",
        "X-Count": "3",
    }
