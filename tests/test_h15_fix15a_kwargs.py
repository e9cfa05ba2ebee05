"""The client's keyword list is written in three places (review R15-13): ``ClientOptions`` (the
TypedDict ``DropClient`` takes), ``AsyncDropClient.__init__`` and ``DropQuery.build`` (the
filters). mypy does not tie them together; this does: a filter or an option added to one and
not the others fails here, naming it."""

from __future__ import annotations

import inspect
import typing

from dropengine.client.aio import AsyncDropClient, ClientOptions
from dropengine.client.query import DropQuery


def _keywords(func: object) -> dict[str, inspect.Parameter]:
    return {n: p for n, p in inspect.signature(func).parameters.items()  # type: ignore[arg-type]
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n not in ("self", "cls", "base_url")}


def test_client_options_name_every_keyword_of_the_async_client_and_nothing_else() -> None:
    options = set(typing.get_type_hints(ClientOptions))
    assert options == set(_keywords(AsyncDropClient.__init__))


def test_every_filter_of_the_query_is_a_client_keyword_with_the_same_default() -> None:
    client = _keywords(AsyncDropClient.__init__)
    for name, param in _keywords(DropQuery.build).items():
        assert name in client, name
        assert client[name].default == param.default, name
