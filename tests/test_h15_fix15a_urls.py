"""Base URLs: one check and one way to show them (helper fix15a: B15A-9, review R15-8, R15-15).

``live.transport.check_http_url`` is the one check of a base URL (the client's and the
upstream's); ``shown_url`` is how messages, reprs and ``/healthz`` show one: a ``user:password``
(httpx sends it as basic auth) never appears. Invariants: the client and the upstream config
refuse the same URLs, naming ``base_url``; a port out of range or an unclosed IPv6 bracket is a
ConfigError (it was an ExceptionGroup traceback at the first connect), and for ``watch`` a usage
error; no repr or name shows the password.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.cli import main
from dropengine.client import AsyncDropClient
from dropengine.core.errors import ConfigError
from dropengine.core.keys import Secret
from dropengine.live.transport import UpstreamConfig, check_http_url, shown_url
from dropengine.server.sources import UpstreamSource

BAD = ["http://127.0.0.1:99999", "http://127.0.0.1:65536", "http://[::1", "http://h:port", "ftp://h", "http://:80",
       "http://h/?apiKey=k-123456789", "http://h/#x", "h:80", ""]


@pytest.mark.parametrize("url", BAD)
def test_the_client_and_the_upstream_refuse_the_same_urls_naming_base_url(url: str) -> None:
    for build in (lambda: AsyncDropClient(url, api_key="k-123456789"),
                  lambda: UpstreamConfig(url, Secret("k-123456789"))):
        with pytest.raises(ConfigError, match=r"^base_url: ") as info:
            build()
        assert "k-123456789" not in str(info.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:0", "http://127.0.0.1:65535", "https://[::1]:8443/base",
                                 "http://u:p@h.example/x/"])
def test_valid_urls_are_kept(url: str) -> None:
    assert check_http_url(url, "base_url").hostname
    AsyncDropClient(url, api_key="k-123456789")
    UpstreamConfig(url, Secret("k-123456789"))


def test_watch_with_a_port_out_of_range_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["watch", "--base-url", "http://127.0.0.1:99999", "--api-key", "k-123456789",
                                       "--all"])
    assert result.exit_code == 2 and "--base-url" in result.output and "Port out of range" in result.output, \
        result.output


@settings(max_examples=40, deadline=None)
@given(st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.from_regex(r"[A-Za-z0-9._~-]{6,20}", fullmatch=True))
def test_a_password_in_a_base_url_is_never_shown(user: str, password: str) -> None:
    password = "PW" + password  # (upper case: no part of the rest of the URL)
    url = f"http://{user}:{password}@odds.example:8080/base"
    config = UpstreamConfig(url, Secret("k-123456789"))
    shown = [shown_url(url), config.shown_base(), repr(config), UpstreamSource(config, None).name,
             repr(AsyncDropClient(url, api_key="k-123456789"))]
    for text in shown:
        assert password not in text and "odds.example:8080" in text, text
    assert config.http_base() == url  # (the connection keeps it: httpx sends it as basic auth)
