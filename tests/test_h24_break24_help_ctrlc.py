"""break24 (session 17): a Ctrl-C while ``dropengine --help`` loads the commands (B24-6).

f9f8994 (ctrl17) guards the executable's start (cli/interrupt.py ``launching``) until the command's
module is loaded, then hands the signals back (``_LazyCommands.__getitem__`` calls ``launched()``). The
group's help lists every command, loading each module in turn: the guard is let go after the first
(``backtest``), so a Ctrl-C while a later one loads (``simulate``, ~0.2 s of the listing) gives click's
"Aborted!" and exit 1, or a KeyboardInterrupt traceback, where the policy is one line and 130 (as it
is while ``backtest``'s module loads). Sent at random times to ``dropengine --help``: 2 of 11 delays
between 0.30 and 0.60 s. Forced with tests/ctrlc_util.py (a slowed import).
"""

from __future__ import annotations

from .ctrlc_util import ctrl_c_in_import


def test_a_ctrl_c_while_the_first_command_loads_for_help_exits_130() -> None:
    """The control: the first command's module is under the start guard."""
    status, err = ctrl_c_in_import(["--help"], "dropengine.cli.backtest")
    assert status == 130, err
    assert "Aborted" not in err


def test_a_ctrl_c_while_a_later_command_loads_for_help_exits_130() -> None:
    status, err = ctrl_c_in_import(["--help"], "dropengine.cli.simulate")
    assert "Traceback" not in err
    assert "Aborted" not in err
    assert status == 130, err
