"""Who may move production from the console: an identity named in `CONSOLE_APPROVERS`.

The one place pages ask (the Rules page's promote and rollback of the production rule set): typing
the alias name guards against slips, this guards authority. Identities compare as Google accounts
do (without case, IAP's `accounts.google.com:` prefix dropped); an empty setting means nobody may,
and production is then moved with the CLI.
"""

from __future__ import annotations

from txguard.contract.settings import ConsoleSettings


def _identity(name: str) -> str:
    return name.strip().removeprefix("accounts.google.com:").lower()


def is_production_approver(analyst: str, settings: ConsoleSettings) -> bool:
    members = {_identity(n) for n in settings.approvers.replace(",", " ").split() if _identity(n)}
    return _identity(analyst) in members
