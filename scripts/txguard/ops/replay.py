"""Labelled simulated traffic through the scoring service in process, and the log lines it writes.

`txguard drift` and `txguard compare` read what the scoring function logs (`drift_window` and
`shadow_score` lines). With no log file at hand they produce one here, through the very code the
function runs (`ScoringService.load` and `handle`, observer thread included), so the figures they
report come from the same lines production would write.

The traffic is the simulator's, replayed through the feature code in time order (its label events
when they became known); only the last
`tail` of the period is scored, like the held-out rows the training reference was counted on.
The scored rows are sent in a random (seeded) order: in the simulator every wallet is born on
day 0, so wallet age and history length are clocks, and a window of consecutive rows would be a
slice of simulated calendar compared with the whole held-out period. Production traffic mixes
wallets of every age at every moment; a shuffled replay does too, so a window is a sample of the
scored population, which is what the PSI is about.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from txguard.contract.models import EnrichedTransaction

JSON_HEADERS = {"Content-Type": "application/json"}
DAY = 86400.0


@dataclass
class Traffic:
    transactions: list[EnrichedTransaction]
    labels: dict[str, int]  # transaction_id -> is_fraud
    scenarios: dict[str, str]  # transaction_id -> fraud scenario ("legit" for the others)
    description: str


def simulated_traffic(days: int, wallets: int, seed: int, drift: float, tail: float = 0.25) -> Traffic:
    from txguard.features.timeline import enriched_of, replay
    from txguard.simulator.core import Simulation

    start = datetime(2026, 1, 1, tzinfo=UTC)
    sim = Simulation(days=days, wallets=wallets, seed=seed, start=start, drift=drift, id_prefix=f"r{seed}")
    labelled = list(sim)
    labels = {r.tx.transaction_id: r.is_fraud for r in labelled}
    scenarios = {r.tx.transaction_id: r.scenario for r in labelled}
    cut = start.timestamp() + (1.0 - tail) * days * DAY
    # Wallet history and counterparty features, the simulator's delayed labels applied when known.
    txs = [enriched_of(tx, row) for tx, row in replay((r.tx for r in labelled), sim.label_events())
           if tx.timestamp.timestamp() >= cut]
    random.Random(seed).shuffle(txs)
    return Traffic(txs, labels, scenarios,
                   f"simulator: {days} days x {wallets} wallets, seed {seed}, drift {drift:g}, last {tail:.0%} scored "
                   f"in random order")


def training_simulation(metadata: Any) -> tuple[int | None, int | None]:
    """Days and wallets of the simulation a version was trained on (its `data_source`); None for
    what it does not say (file data: both).

    Replayed traffic must have the training population's size, not only its calendar: the
    counterparty features count a counterparty's transactions and paying wallets, and the
    simulator's counterparties are shared by all wallets, so fewer wallets give every counterparty
    less traffic. That is a different population, which the drift check would rightly flag.
    """
    source = str(getattr(metadata, "data_source", "") or "")
    if not source.startswith("simulator "):
        return None, None
    try:
        shape = json.loads(source.removeprefix("simulator "))
    except ValueError:
        return None, None
    if not isinstance(shape, dict):
        return None, None

    def number(key: str) -> int | None:
        try:
            return int(shape[key])
        except (KeyError, TypeError, ValueError):
            return None

    return number("days"), number("wallets")


def run_service(txs: list[EnrichedTransaction], env: dict[str, Any],
                progress: Callable[[int, int], None] = lambda _done, _total: None) -> list[dict[str, Any]]:
    """Score `txs` one request each through a ScoringService built from `env`; its JSON log lines."""
    from txguard.contract.settings import ScoringSettings
    from txguard.scoring.http import BytesBody
    from txguard.scoring.service import ScoringService

    buffer = io.StringIO()
    handlers = [h for h in logging.getLogger("txguard").handlers if isinstance(h, logging.StreamHandler)]
    with contextlib.redirect_stdout(buffer), _streams_to(handlers, buffer):
        service = ScoringService.load(ScoringSettings(**{k: str(v) for k, v in env.items()}))
        if service.state.champion is None:
            raise RuntimeError(f"the scoring service could not load {env.get('MODEL_URI')}: {service.state.load_error}")
        if service.follower is not None:
            service.follower.check()  # what its thread does first: load the challenger
        for n, tx in enumerate(txs, 1):
            service.handle("POST", "/score", JSON_HEADERS, BytesBody(tx.model_dump_json().encode()))
            if n % 500 == 0:
                progress(n, len(txs))
        service.close()  # the observer processes what is queued and emits its last window
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


@contextlib.contextmanager
def _streams_to(handlers: list[logging.StreamHandler], stream: io.StringIO):  # noqa: ANN202
    """The `txguard` loggers write where they were configured (stdout at first use): here, the buffer."""
    previous = []
    for h in handlers:  # not setStream: it flushes the old stream, which may be closed (a test's capture)
        previous.append(h.stream)
        h.stream = stream
    try:
        yield
    finally:
        for h, old in zip(handlers, previous, strict=True):
            h.stream = old
