"""The scenarios of `txguard reliability`, in run order: name -> function(Context) -> result dict.

A new scenario is a function in a module of its own (taking the `Context`, ending with
txguard.reliability.checks.finish) registered here and named in `SCENARIO_NAMES`
(txguard.reliability, so `txguard --help` imports nothing heavy; a test keeps both in step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from txguard.reliability import (
    counterparty,
    faults,
    label_poisoning,
    label_scenario,
    promotion,
    rule_promotion,
    scenarios,
)
from txguard.reliability.context import Context

SCENARIOS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "duplicates": scenarios.duplicates,
    "poison": scenarios.poison_scenario,
    "scoring_outage": scenarios.scoring_outage,
    "store_outage": scenarios.store_outage,
    "bad_model": scenarios.bad_model_scenario,
    "burst": scenarios.burst,
    "worker_kill": faults.worker_kill,
    "flaky_delivery": faults.flaky_delivery,
    "promotion": promotion.promotion,
    "rule_promotion": rule_promotion.rule_promotion,
    "labels": label_scenario.labels_scenario,
    "label_poisoning": label_poisoning.label_poisoning,
    "counterparty_hot": counterparty.counterparty_hot,
    "counterparty_outage": counterparty.counterparty_outage,
}
