"""Run the scenarios on one local stack and decide the verdict.

The stack is `txguard local up`'s (scripts/txguard/local/stack.py): the push bridge delivers the
transactions subscription with production's settings (ordering by wallet, retry policy,
dead-letter policy), and the dead-letter subscription is left to the redrive instead of a pull
consumer. With `push="emulator"` the emulator's own push subscription is created without its
retry policy unless `keep_retry_policy` (its backoff scheduler stops for good after concurrent
push failures, docs/reliability.md). Everything started
is stopped when the stack closes, whatever happens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from txguard.local.ledger import Ledger
from txguard.reliability.context import FULL, QUICK, Context, Profile
from txguard.reliability.label_poisoning import LABEL_SETTINGS
from txguard.reliability.registry import SCENARIOS


@dataclass
class RunOptions:
    quick: bool = False
    only: list[str] = field(default_factory=list)
    embedded: bool = False
    keep_retry_policy: bool = False
    push: str = "bridge"
    rate: float = 25.0  # the nominal rate of every scenario (the burst is a multiple of it)
    unordered: bool = False  # the bridge's per-wallet order off: shows the skew the checks catch
    workdir: Path | None = None
    project: str = "txguard-reliability"

    @property
    def profile(self) -> Profile:
        return QUICK if self.quick else FULL


class Progress:
    """One live status line (rich), updated by the publish and drain loops."""

    def __init__(self, terminal: Any) -> None:
        self.terminal = terminal
        self.live: Any = None
        self.started = time.monotonic()
        self._label = ""

    def __enter__(self) -> Progress:
        from txguard.local.terminal import live  # a rich Live on a terminal, plain lines when piped

        self._display = live(self.terminal)
        self.live = self._display.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self._display.__exit__(*exc)
            self.live = None

    def phase(self, ledger: Ledger, label: str) -> None:
        self._label = label
        self.terminal.print(f"[dim]{time.monotonic() - self.started:6.1f}s[/] {ledger.name}: {label}")

    def update(self, ledger: Ledger, state: str) -> None:
        if self.live is None:
            return
        s = ledger.summary()
        self.live.update(
            f"[bold]{ledger.name}[/] {state}  sent {s['sent']}  decided {s['decided']}/{s['transactions']}  "
            f"invalid {s['invalid']}/{s['poison']}  redriven {s['redriven']}  pending {ledger.pending()}  "
            f"[dim]{time.monotonic() - self.started:.0f}s[/]")


def run(options: RunOptions, terminal: Any) -> dict[str, Any]:
    """Bring the stack up, run the scenarios in order, return {"results": {...}, "meta": {...}}."""
    from txguard.local.stack import LocalStack, StackOptions

    names = options.only or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    stack_options = StackOptions(
        count=0, rate=options.rate, embedded=options.embedded, workdir=options.workdir, project=options.project,
        warmup=0,
        emulator_retry_policy=options.keep_retry_policy, pull_dead_letter=False, push=options.push,
        label_env=dict(LABEL_SETTINGS),  # limits a scenario can reach, a short wait for unknown transactions
    )
    results: dict[str, Any] = {}
    started = time.monotonic()
    stack = LocalStack(stack_options, terminal)
    router = stack.ledgers  # the consumers and the embedded broker deliver to it
    with stack, Progress(terminal) as progress:
        stack.up()
        if options.unordered and stack.dispatcher is not None:
            stack.dispatcher.ordering = False
        ctx = Context(stack, options.profile, router, progress)
        for name in names:
            t0 = time.monotonic()
            terminal.print(f"[bold]scenario {name}[/]")
            results[name] = SCENARIOS[name](ctx)
            results[name]["seconds"] = round(time.monotonic() - t0, 1)
        meta = {
            "mode": stack.mode, "profile": options.profile.name, "nominal_rate": stack.rate,
            "model_version": stack.model.get("version"), **stack.delivery_summary(),
            "retry_policy_on_emulator": options.push == "bridge" or options.keep_retry_policy,
            "unmatched_outputs": dict(router.unmatched), "workdir": str(stack.workdir),
            "total_s": round(time.monotonic() - started, 1),
        }
    return {"results": results, "meta": meta}


def passed(results: dict[str, Any]) -> bool:
    """Exit 0 only if every scenario has lost = 0, double_counted = 0 and no failed check."""
    for result in results.values():
        if result.get("skipped"):
            continue
        if result.get("lost") != 0 or result.get("double_counted") != 0 or result.get("failed_checks"):
            return False
    return True
