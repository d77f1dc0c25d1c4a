"""The README stays true to the code: its two commands, its configuration table, its examples."""

from __future__ import annotations

import json
import re
from pathlib import Path

from txguard.contract import models as contract
from txguard.contract import settings

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()


def _table_names() -> set[str]:
    """Names in the first column of the configuration table (`A` / `B` and `A`, `B` expanded)."""
    names: set[str] = set()
    for row in re.findall(r"^\| (`[^|]+) \|", README, flags=re.M):
        cells = re.findall(r"`([^`]+)`", row)
        prefix = ""
        for cell in cells:
            if ":" in cell:
                prefix = cell.split(":", 1)[0] + ":"
                names.add(cell)
            else:
                names.add(prefix + cell if prefix else cell)
    return names


def test_the_two_commands_are_make_targets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert f"make {target}" in README
        assert re.search(rf"^{target}: ", makefile, flags=re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_setting_is_in_the_configuration_table() -> None:
    documented = _table_names()
    for cls in (settings.ScoringSettings, settings.EnrichSettings, settings.LabelSettings, settings.ConsoleSettings):
        for name, field in cls.model_fields.items():
            assert field.alias in documented, f"{cls.__name__}.{name} ({field.alias}) missing from README"


def test_every_pulumi_key_is_in_the_configuration_table() -> None:
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    keys = set(re.findall(r"^\| `(txguard:\w+|gcp:\w+)` \|", deploy, flags=re.M))
    assert len(keys) > 30
    missing = keys - _table_names()
    assert not missing, f"Pulumi keys in docs/deploy.md but not in the README table: {sorted(missing)}"


def test_every_environment_variable_the_code_reads_is_documented() -> None:
    documented = _table_names()
    pattern = re.compile(r"""environ(?:\.get)?[\[(]\s*["']([A-Z][A-Z0-9_]+)["']""")
    read: set[str] = set()
    for folder in ("shared", "functions", "scripts", "models", "infra"):
        for path in (ROOT / folder).rglob("*.py"):
            read |= set(pattern.findall(path.read_text()))
    assert read, "the pattern found no environment reads"
    missing = read - documented
    assert not missing, f"environment variables read by the code but not in the README: {sorted(missing)}"


def test_curl_examples_are_valid_requests() -> None:
    one = json.loads((ROOT / "docs" / "examples" / "score_request.json").read_text())
    contract.EnrichedTransaction.model_validate(one)
    batch = json.loads((ROOT / "docs" / "examples" / "score_batch_request.json").read_text())
    assert len(contract.BatchRequest.model_validate(batch).transactions) == 3


def test_folder_table_matches_the_tree() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([a-z/]+)/`[^|]* \| (.+) \|$", readme, re.M)}
    for home in ("shared", "scripts", "models"):
        row = rows.get(f"{home}/txguard")
        assert row is not None, f"README folder table has no row for {home}/txguard/"
        for init in (ROOT / home / "txguard").glob("*/__init__.py"):
            assert f"`{init.parent.name}`" in row, f"{home}/txguard/{init.parent.name} missing from the README table"
    for folder in rows:
        assert (ROOT / folder.split("`")[0]).exists(), folder
