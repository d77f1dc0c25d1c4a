"""What a scoring process serves: the champion that answers, the challenger that shadows, and why
nothing answers when the champion is missing.

One small object shared by the modules that need it, each receiving it rather than reaching into
another: the cold start (txguard.scoring.service) and the follower thread (txguard.scoring.follower)
change it, the routes read it for every request, the observer thread reads it to shadow-score and
count drift. Each field is one reference, replaced whole: a request reads `champion` once and uses
that scorer to its end, so its decision and its log line name the version that made them even if
the follower swaps the champion meanwhile.

The rule sets applied after the model live here too (txguard.rules): `rules` (the production
alias, applied to every decision) and `staging_rules` (shadowed by the observer), swapped whole by
the follower like the scorers; a request reads `rules` once, next to the champion.

The follower's refusals live here too (per role, version -> why): `/health` shows them and the
follower skips a refused version until its alias moves.
"""

from __future__ import annotations

from txguard.contract.errors import ModelUnavailableError
from txguard.rules.engine import RuleSet
from txguard.scoring.scorer import Scorer

CHAMPION = "champion"  # answers every request
CHALLENGER = "challenger"  # scored in the background on a sample, never answers (shadow scoring)
RULES = "rules"  # the rule set applied after the champion
STAGING_RULES = "staging_rules"  # the rule set evaluated in shadow
ROLES = (CHAMPION, CHALLENGER, RULES, STAGING_RULES)


class ServingState:
    def __init__(self, champion: Scorer | None = None, load_error: str | None = None) -> None:
        self.champion = champion
        self.challenger: Scorer | None = None
        self.load_error = load_error  # why there is no champion (None while one answers)
        self.rules: RuleSet | None = None
        self.staging_rules: RuleSet | None = None
        self._refused: dict[str, dict[str, str]] = {role: {} for role in ROLES}

    @property
    def version(self) -> str | None:
        champion = self.champion
        return champion.version if champion else None

    def require_champion(self) -> Scorer:
        """The scorer that answers this request (read once), or 503 with the reason there is none."""
        champion = self.champion
        if champion is None:
            raise ModelUnavailableError(f"model not loaded: {self.load_error}")
        return champion

    def scorer(self, role: str) -> Scorer | None:
        return self.champion if role == CHAMPION else self.challenger

    def serve(self, role: str, scorer: Scorer) -> Scorer | None:
        """`scorer` answers (champion) or shadows (challenger) from now on; returns the one it replaces."""
        previous = self.scorer(role)
        if role == CHAMPION:
            self.champion = scorer  # the one swap every request reads once
            self.load_error = None
        else:
            self.challenger = scorer
        return previous

    def rule_set(self, role: str) -> RuleSet | None:
        return self.rules if role == RULES else self.staging_rules

    def apply_rules(self, role: str, rules: RuleSet | None) -> RuleSet | None:
        """`rules` are applied (RULES) or shadowed (STAGING_RULES) from now on; returns the ones replaced."""
        previous = self.rule_set(role)
        if role == RULES:
            self.rules = rules  # one swap, read once per request
        else:
            self.staging_rules = rules
        return previous

    def fail(self, reason: str) -> None:
        """No champion could be loaded: `/health` and every request say why (503)."""
        self.load_error = reason

    def loaded(self, version: str) -> Scorer | None:
        """A scorer of `version` this process already serves in either role (shared, not loaded twice)."""
        return next((s for s in (self.champion, self.challenger) if s is not None and s.version == version), None)

    # Refusals ----------------------------------------------------------------------------------
    def refuse(self, role: str, version: str, reason: str) -> None:
        self._refused[role][version] = reason

    def is_refused(self, role: str, version: str) -> bool:
        return version in self._refused[role]

    def forget_refusals(self, role: str) -> None:
        """The role's alias moved elsewhere: a later promote of a refused version is tried again."""
        self._refused[role] = {}

    def refusals(self) -> dict[str, str]:
        """Every refused version with the reason, both roles (a copy: safe to read from any thread)."""
        out: dict[str, str] = {}
        for role in ROLES:
            out.update(dict(self._refused[role]))
        return out
