"""The quality gate: a model that is bad, worse than production, or whose scores are not the
probabilities they claim to be, is never published."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from txguard.contract.errors import QualityGateError
from txguard.registry.metadata import QualityGate
from txguard.training.metrics import CALIBRATION_MIN_ROWS


@dataclass(frozen=True)
class GatePolicy:
    min_pr_auc: float = 0.5
    max_regression: float = 0.02
    # Calibration on the held-out rows (txguard.training.metrics.calibration): the expected
    # calibration error over 10 equal-width bins, and the largest gap of a bin holding >= 100 rows.
    max_ece: float = 0.02
    max_calibration_gap: float = 0.10


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


def check_calibration(calibration: dict[str, float], policy: GatePolicy) -> None:
    """Refuse a version whose held-out scores are not the probabilities they claim to be."""
    ece, gap = calibration["ece"], calibration["ece_max_gap"]
    if not ece <= policy.max_ece:  # NaN refuses too
        raise QualityGateError(
            f"quality gate: expected calibration error {ece:.4f} is above the bound {policy.max_ece:.4f} (--max-ece)"
        )
    if not gap <= policy.max_calibration_gap:
        raise QualityGateError(
            f"quality gate: a score bin holding >= {CALIBRATION_MIN_ROWS} held-out rows is off its fraud rate by {gap:.4f}, above "
            f"the bound {policy.max_calibration_gap:.4f} (--max-calibration-gap)"
        )


def passed(policy: GatePolicy, production_version: str | None) -> QualityGate:
    """What a version that passed `check` and `check_calibration` records (its metadata's `quality_gate`)."""
    return QualityGate(passed=True, policy={k: float(v) for k, v in asdict(policy).items()},
                       compared_with=production_version)
