"""The quality gate: a model that is bad, or worse than production, is never published."""

from __future__ import annotations

from dataclasses import dataclass

from txguard.contract.errors import QualityGateError


@dataclass(frozen=True)
class GatePolicy:
    min_pr_auc: float = 0.5
    max_regression: float = 0.02


def check(pr_auc: float, production_pr_auc: float | None, policy: GatePolicy) -> None:
    """Raise QualityGateError with a reason a human can act on; return when the model passes.

    `production_pr_auc` should be the production model's PR-AUC on the *same* held-out rows when
    it can be computed (same features), otherwise the value recorded at its training.
    """
    if not pr_auc == pr_auc:  # NaN
        raise QualityGateError("quality gate: PR-AUC is not a number")
    if pr_auc < policy.min_pr_auc:
        raise QualityGateError(
            f"quality gate: PR-AUC {pr_auc:.4f} is below the floor {policy.min_pr_auc:.4f} (--min-pr-auc)"
        )
    if production_pr_auc is not None and production_pr_auc - pr_auc > policy.max_regression:
        raise QualityGateError(
            f"quality gate: PR-AUC {pr_auc:.4f} is worse than production's {production_pr_auc:.4f} by more "
            f"than {policy.max_regression:.4f} (--max-regression)"
        )
