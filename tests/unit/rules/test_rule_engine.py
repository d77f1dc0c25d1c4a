"""Precedence of rules and model (docs/rules.md): block > review > allow; rules only add severity but
an explicit allow; every rule is evaluated and the hits keep the set's order."""

from __future__ import annotations

import pytest

from txguard.contract.models import Outcome, RuleSetSpec
from txguard.features.wallet import FEATURE_NAMES
from txguard.rules.engine import RuleSet, decide

A, R, B = Outcome.ALLOW, Outcome.REVIEW, Outcome.BLOCK


@pytest.mark.parametrize(("model", "fired", "expected"), [
    (A, [], A), (R, [], R), (B, [], B),
    (A, [R], R), (B, [R], B), (R, [R], R),
    (A, [B], B), (A, [A], A), (R, [A], A), (B, [A], A),
    (B, [A, R], B), (A, [A, R], R), (A, [A, B, R], B),
])
def test_decide(model: Outcome, fired: list[Outcome], expected: Outcome) -> None:
    assert decide(model, fired) is expected


def test_hits_are_every_rule_that_fired_in_order() -> None:
    rules = RuleSet(RuleSetSpec(rules=[
        {"name": "big", "condition": "amount > 100", "outcome": "review", "reason": "big amount"},
        {"name": "small", "condition": "amount < 10", "outcome": "block", "reason": "tiny"},
        {"name": "trusted", "condition": "counterparty_id == 'm-1'", "outcome": "allow", "reason": "trusted"},
    ]), version="r7")
    r = [0.0] * len(FEATURE_NAMES)
    r[FEATURE_NAMES.index("amount")] = 500.0

    class Tx:
        type, channel, country, currency = "payment", "app", "FR", "EUR"
        counterparty_id, wallet_id, device_id = "m-1", "w-1", None

    outcome, hits = rules.apply(r, 0.9, Tx(), Outcome.BLOCK)
    assert outcome is Outcome.BLOCK  # a review rule never lowers the model's block; allow loses to review
    assert [h.rule for h in hits] == ["big", "trusted"]
    assert hits[0].reason == "big amount" and hits[0].outcome is Outcome.REVIEW
    Tx.counterparty_id = "m-2"
    r[FEATURE_NAMES.index("amount")] = 50.0
    assert rules.apply(r, 0.9, Tx(), Outcome.REVIEW) == (Outcome.REVIEW, [])
    assert len(rules) == 3 and rules.version == "r7"
