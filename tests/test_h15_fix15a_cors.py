"""``--cors-origin``: an accepted origin is the text a browser sends (helper fix15a, B15A-4).

CORS compares the request's ``Origin`` with each allowed entry as text, so an entry a browser
would serialize differently (upper case, the scheme's default port, an uncompressed IPv6 host)
never matched, silently. Invariant: :func:`cors_origins` returns an origin in its browser
serialization (checked against httpx's URL normalization), idempotently, and checks every entry.
"""

from __future__ import annotations

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dropengine.core.errors import ConfigError
from dropengine.server.app import cors_origins

_label = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}[A-Za-z0-9]", fullmatch=True)
_host = st.lists(_label, min_size=1, max_size=3).map(".".join)
_origin = st.tuples(st.sampled_from(["http", "https", "HTTP", "Https"]), _host,
                    st.one_of(st.none(), st.sampled_from([80, 443]), st.integers(1, 65535)))


def _text(scheme: str, host: str, port: int | None) -> str:
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


@settings(max_examples=60, deadline=None)
@given(_origin)
@example(("Https", "A0", 443))
@example(("HTTP", "x.Example", 80))
def test_an_accepted_origin_is_the_browser_serialization(origin: tuple[str, str, int | None]) -> None:
    text = _text(*origin)
    scheme, host, port = origin[0].lower(), origin[1].lower(), origin[2]
    # (spelled out: httpx.URL drops a default port only when the scheme is already lower case)
    shown_port = None if (scheme, port) in (("http", 80), ("https", 443)) else port
    browser = f"{scheme}://{host}" + (f":{shown_port}" if shown_port is not None else "")
    url = httpx.URL(text.lower())  # and a second opinion on the lower-cased text
    assert browser == f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port is not None else "")
    assert cors_origins([text]) == (browser,)
    assert cors_origins(cors_origins([text])) == (browser,)  # idempotent


@pytest.mark.parametrize(("given_", "expected"), [
    ("http://[0:0:0:0:0:0:0:1]:8080", "http://[::1]:8080"),
    ("https://127.0.0.1:443", "https://127.0.0.1"),
    ("https://odds.example.com:80", "https://odds.example.com:80"),
    (" https://odds.example.com ", "https://odds.example.com"),
])
def test_examples(given_: str, expected: str) -> None:
    assert cors_origins([given_]) == (expected,)


@pytest.mark.parametrize("bad", ["https://odds.example.com:65536", "https://odds.example.com:99999",
                                 "http://127.0.0.01", "http://1.2.3", "http://[::zz]", "https://x/", "ftp://x"])
def test_no_browser_sends_it_so_it_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="cors_origin"):
        cors_origins([bad])
    with pytest.raises(ConfigError, match="cors_origin"):  # after a '*' as well
        cors_origins(["*", bad])


def test_duplicates_after_serialization_are_one_and_a_wildcard_is_alone() -> None:
    assert cors_origins(["https://A.example", "https://a.example:443"]) == ("https://a.example",)
    assert cors_origins(["https://a.example", "*"]) == ("*",)
    assert cors_origins([]) == ()
