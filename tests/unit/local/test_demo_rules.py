"""The demo's rule set: the one docs/examples/rules.json shows, checked, saved once as production."""

from __future__ import annotations

import json
from pathlib import Path

from txguard.local.model import DEMO_RULES, ensure_rules
from txguard.registry import open_registry
from txguard.registry.rulesets import RuleSetRegistry

ROOT = Path(__file__).resolve().parents[3]


def test_the_docs_example_is_the_demo_rule_set() -> None:
    assert json.loads((ROOT / "docs" / "examples" / "rules.json").read_text()) == DEMO_RULES


def test_ensure_rules_saves_once(tmp_path: Path) -> None:
    first = ensure_rules(str(tmp_path))
    again = ensure_rules(str(tmp_path))
    assert first["saved"] and not again["saved"] and first["version"] == again["version"] == "r1"
    meta = RuleSetRegistry(open_registry(str(tmp_path)).store).metadata("r1")
    assert meta.saved_by == "txguard local up" and meta.rules == [r["name"] for r in DEMO_RULES["rules"]]
