"""The approvers check on its own (txguard.console.approvers): who may move production, and the reason
a refusal gives. The pages that use it are tested through HTTP in test_console_app.py."""

from __future__ import annotations

import pytest

from txguard.console.approvers import PROTECTED_ALIASES, Approvers
from txguard.contract.errors import ConsoleForbiddenError


def test_members_compare_like_accounts() -> None:
    approvers = Approvers.parse(" Carol@Example.com,dan  accounts.google.com:erin@example.com ,, ")
    assert approvers.members == frozenset({"carol@example.com", "dan", "erin@example.com"})
    assert approvers.is_approver("carol@example.com") and approvers.is_approver("CAROL@example.com")
    assert approvers.is_approver("accounts.google.com:dan") and approvers.is_approver("erin@example.com")
    assert not approvers.is_approver("alice@example.com") and not approvers.is_approver("")


def test_require_names_the_analyst_the_action_and_why() -> None:
    approvers = Approvers.of(["carol@example.com"])
    approvers.require("carol@example.com", "promote v3 to production")
    with pytest.raises(ConsoleForbiddenError) as refused:
        approvers.require("alice@example.com", "promote v3 to production")
    assert refused.value.status == 403
    assert refused.value.message.startswith(
        "alice@example.com may not promote v3 to production: only a production approver may")


def test_nobody_may_when_no_approver_is_configured() -> None:
    for empty in (Approvers(), Approvers.parse(""), Approvers.parse(" , ")):
        with pytest.raises(ConsoleForbiddenError, match="no production approvers are configured"):
            empty.require("carol@example.com", "roll production back")


def test_only_protected_aliases_need_an_approver() -> None:
    approvers = Approvers.of(["carol"])
    assert "production" in PROTECTED_ALIASES and "staging" not in PROTECTED_ALIASES
    approvers.require_for_alias("alice", "staging", "promote v3 to staging")
    with pytest.raises(ConsoleForbiddenError):
        approvers.require_for_alias("alice", "production", "promote v3 to production")
