"""docs/deploy.md stays true to the program: every config key listed, URNs that exist."""

from __future__ import annotations

import re

from pulumi_mocks import ROOT, StackRun

DEPLOY = (ROOT / "docs" / "deploy.md").read_text()


def keys_read_by_config() -> set[str]:
    """Config keys infra/config.py reads (`{prefix}X` expanded for both functions)."""
    source = (ROOT / "infra" / "config.py").read_text()
    found = set(re.findall(r'(?:get(?:_int|_bool|_float|_object)?\(|_(?:int|bool|float)\(cfg, )(f?)"([^"]+)"', source))
    keys = set()
    for is_f, key in found:
        if is_f:
            keys |= {key.replace("{prefix}", fn) for fn in ("scoring", "enrich")}
        else:
            keys.add(key)
    return keys


def test_config_table_lists_exactly_the_keys_the_program_reads() -> None:
    documented = set(re.findall(r"^\| `txguard:(\w+)` \|", DEPLOY, flags=re.M))
    read = keys_read_by_config()
    assert len(read) > 30  # the regex found the getters
    assert documented == read


def test_documented_urns_name_declared_resources(default_stack: StackRun) -> None:
    urns = re.findall(r"'(urn:pulumi:dev::txguard::[^']+)'", DEPLOY)
    assert urns
    for urn in urns:
        qualified_type, name = urn.split("::")[2:4]
        # The mock monitor prefixes the root stack's type; the engine does not: compare the tail.
        assert any(u.endswith(f"{qualified_type}::{name}") for u in default_stack.urns), urn
