"""reread20's RR20-8 (session 20): ``batch._Once`` (the line moves' numbers, made once by the main
thread or the line table's thread, whichever asks first) remembers a failure: a Ctrl-C in the main
thread's making is raised to the table's thread too, which then does not make the numbers again
for a table nobody will read."""

from __future__ import annotations

import pytest

from dropengine.analysis.batch import _Once


def test_made_once_and_a_failure_raised_to_every_caller_without_making_again() -> None:
    calls: list[int] = []

    def make() -> int:
        calls.append(1)
        return 7

    once = _Once(make)
    assert once() == once() == 7 and calls == [1]

    def cut() -> int:
        calls.append(2)
        raise KeyboardInterrupt

    failed = _Once(cut)
    with pytest.raises(KeyboardInterrupt):
        failed()
    with pytest.raises(KeyboardInterrupt):
        failed()
    assert calls == [1, 2]
