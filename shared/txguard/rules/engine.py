"""A compiled rule set applied after the model: which rules fired, and the outcome they make.

Precedence (docs/rules.md): every rule of the set is evaluated (so each hit is known, for the
decision, the logs and the backtests); the outcome is then

- `block` if a block rule fired;
- else the more severe of `review` and the model's outcome if a review rule fired (a review rule
  never lowers a model's block);
- else `allow` if an allow rule fired (the one way a rule overrules the model: an allowlist);
- else the model's outcome.

So block > review > allow among rules, rules can only add severity to the model except an
explicit `allow`, and the order of the rules only orders the hits a decision lists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from txguard.contract.models import RULE_SET_ADAPTER, Outcome, RuleHit, RuleSetSpec
from txguard.rules.compiler import Compiled, compile_rule_set

_SEVERITY = {Outcome.ALLOW: 0, Outcome.REVIEW: 1, Outcome.BLOCK: 2}


def decide(model: Outcome, fired: Sequence[Outcome]) -> Outcome:
    """The outcome of a transaction given the model's and the outcomes of the rules that fired."""
    if not fired:
        return model
    if Outcome.BLOCK in fired:
        return Outcome.BLOCK
    if Outcome.REVIEW in fired:
        return Outcome.BLOCK if model is Outcome.BLOCK else Outcome.REVIEW
    return Outcome.ALLOW


class RuleSet:
    """A checked and compiled rule set of one version; thread-safe (no state after construction)."""

    def __init__(self, spec: RuleSetSpec, version: str = "local") -> None:
        self.spec = spec
        self.version = version
        self.compiled: Compiled = compile_rule_set(spec, label=f"rules {version}")
        self.evaluate = self.compiled.function  # f(row, score, tx) -> indices of the rules that fired
        self.names = tuple(rule.name for rule in spec.rules)
        self.outcomes = tuple(rule.outcome for rule in spec.rules)
        self.hits = tuple(RuleHit.model_construct(rule=r.name, outcome=r.outcome, reason=r.reason)
                          for r in spec.rules)

    @classmethod
    def from_json(cls, data: bytes | str, version: str = "local") -> RuleSet:
        return cls(RULE_SET_ADAPTER.validate_json(data), version)

    def __len__(self) -> int:
        return len(self.names)

    def apply(self, row: Sequence[float], score: float, tx: Any, model: Outcome) -> tuple[Outcome, list[RuleHit]]:
        """The outcome and the hits for one transaction (hits in the set's order)."""
        fired = self.evaluate(row, score, tx)
        if not fired:
            return model, []
        hits = self.hits
        outcomes = self.outcomes
        return decide(model, [outcomes[i] for i in fired]), [hits[i] for i in fired]


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
