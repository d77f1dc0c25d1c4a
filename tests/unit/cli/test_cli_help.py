"""`--help` of every command prints as written."""

from __future__ import annotations

import re


def test_help_texts_print_as_written() -> None:
    """argparse %-formats help strings but not descriptions: no command shows a doubled '%%'."""
    from txguard.cli.main import build_parser

    parser = build_parser()
    pending = [parser]
    seen = 0
    while pending:
        current = pending.pop()
        text = current.format_help()
        seen += 1
        assert "%%" not in text, current.prog
        assert not re.search(r"%\(\w+\)", text), current.prog
        for action in current._actions:
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                pending.extend(action.choices.values())
    assert seen > 15
