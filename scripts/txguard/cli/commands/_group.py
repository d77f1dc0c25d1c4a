"""Command groups shared by several modules (e.g. `txguard bench score`, `txguard bench e2e`).

`command_group(subparsers, "bench", help)` returns the group's sub-subparsers, creating the
group on first use: each module adds its own action without knowing which module ran first.
"""

from __future__ import annotations

import argparse


def command_group(subparsers: argparse._SubParsersAction, name: str, help_text: str) -> argparse._SubParsersAction:
    parser = subparsers.choices.get(name)
    if parser is None:
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        group = parser.add_subparsers(dest=f"{name}_command", metavar="ACTION")
        parser.set_defaults(func=lambda _args: (parser.print_help(), 0)[1])
        return group
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise ValueError(f"command {name!r} exists and is not a group")
