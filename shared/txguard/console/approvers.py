"""Who may move production: a set of approvers apart from the analysts, checked on every move.

Every member of the analysts group gets through Identity-Aware Proxy, and typing the alias name
only guards against slips: it says nothing about authority. Moving what production serves (promote,
roll back; any page that does) therefore needs an identity from a separate set, the stack's
`productionApprovers` (`CONSOLE_APPROVERS`), compared with the identity the console knows the
analyst by: the e-mail of the verified IAP assertion in Google Cloud (txguard.console.identity),
the local name otherwise (locally nothing is authenticated: the check keeps the same rules, not the
same guarantee). An empty set means nobody may: production is then moved with `txguard registry`.

Reusable by any page: `Approvers.require(analyst, what)` raises `ConsoleForbiddenError` (403) whose
message names the analyst, what was refused and why, which the page shows as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from txguard.contract.errors import ConsoleForbiddenError

# The aliases only an approver may move (what the scoring function serves).
PROTECTED_ALIASES = frozenset({"production"})


def _identity(name: str) -> str:
    """E-mails compare without case, as Google accounts do; IAP's `accounts.google.com:` prefix goes."""
    return name.strip().removeprefix("accounts.google.com:").lower()


@dataclass(frozen=True)
class Approvers:
    members: frozenset[str] = frozenset()

    @classmethod
    def of(cls, names: Iterable[str]) -> Approvers:
        return cls(frozenset(_identity(n) for n in names if _identity(n)))

    @classmethod
    def parse(cls, raw: str) -> Approvers:
        """`CONSOLE_APPROVERS`: identities separated by commas (or spaces)."""
        return cls.of(raw.replace(",", " ").split())

    def is_approver(self, analyst: str) -> bool:
        return _identity(analyst) in self.members

    def require(self, analyst: str, what: str) -> None:
        """Return if `analyst` may do `what` (e.g. "promote v7 to production"), else refuse with the reason."""
        if not self.members:
            raise ConsoleForbiddenError(
                f"{analyst} may not {what}: no production approvers are configured (CONSOLE_APPROVERS, the "
                "stack's productionApprovers), so production is moved with the CLI only (`txguard registry`, "
                "`txguard rules promote`)")
        if not self.is_approver(analyst):
            raise ConsoleForbiddenError(
                f"{analyst} may not {what}: only a production approver may ({len(self.members)} configured, "
                "CONSOLE_APPROVERS); ask one of them")

    def require_for_alias(self, analyst: str, alias: str, what: str) -> None:
        """`require` when `alias` is protected; any analyst may move the others (staging)."""
        if alias in PROTECTED_ALIASES:
            self.require(analyst, what)
