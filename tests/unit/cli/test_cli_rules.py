"""`txguard rules`: check with each problem's place, save (who and why), list, promote, rollback and a
backtest on a saved sample, each ending with one JSON line; errors in the CLI's one style."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.console_fixtures import backtest_sample
from txguard.cli.main import main as cli
from txguard.registry import open_registry
from txguard.registry.rulesets import RuleSetRegistry

ROOT = Path(__file__).resolve().parents[3]
GOOD = {"rules": [{"name": "new_shop", "condition": "type == 'payment' && amount > 100 && is_new_counterparty == 1",
                   "outcome": "review", "reason": "first big payment to a new counterparty"}]}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = cli(list(argv))
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, json.loads(lines[-1]) if lines else {}, err


def write(path: Path, body: object) -> str:
    path.write_text(json.dumps(body))
    return str(path)


def test_check_names_the_place_of_each_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path / "bad.json", {"rules": [
        {"name": "typo", "condition": "amount > 5 &&\n  amout < 9", "outcome": "review", "reason": "r"},
        {"name": "never", "condition": "amount > 500 && amount < 100", "outcome": "block", "reason": "r"}]})
    code, last, err = run(capsys, "rules", "check", bad)
    assert code == 1 and last["ok"] is False
    assert [(p["rule"], p["line"], p["column"]) for p in last["problems"]] == [("typo", 2, 3), ("never", 1, 14)]  # the && that contradicts
    assert f"{bad}: rule typo, line 2 column 3: unknown name 'amout'" in err
    assert err.strip().splitlines()[-1].startswith(f"error: rule file {bad} refused, 2 problem(s) above, fix them")
    code, last, _ = run(capsys, "rules", "check", write(tmp_path / "shape.json", {"rules": [{"name": "X"}]}))
    assert code == 1 and any(p["field"] == "rules.0.name" for p in last["problems"])
    code, last, _ = run(capsys, "rules", "check", str(ROOT / "docs" / "examples" / "rules.json"))
    assert code == 0 and last["ok"] is True and "first_big_payment_new_shop" in last["rules"]


def test_save_list_promote_rollback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = str(tmp_path / "registry")
    good = write(tmp_path / "good.json", GOOD)
    code, saved, _ = run(capsys, "rules", "--registry", registry, "save", good, "--reason", "fake shops", "--by", "ana")
    assert code == 0 and saved["version"] == "r1" and saved["alias"] == "staging" and saved["saved_by"] == "ana"
    code, second, _ = run(capsys, "rules", "--registry", registry, "save", str(ROOT / "docs" / "examples" / "rules.json"),
                          "--reason", "the demo's", "--by", "bo", "--alias", "")
    assert code == 0 and second["version"] == "r2" and second["alias"] is None
    assert run(capsys, "rules", "--registry", registry, "promote", "r1")[1]["version"] == "r1"
    assert run(capsys, "rules", "--registry", registry, "promote", "r2")[1]["version"] == "r2"
    code, listed, _ = run(capsys, "rules", "--registry", registry, "list")
    assert listed["aliases"] == {"production": "r2", "staging": "r1"}
    assert [(v["version"], v["saved_by"], v["reason"]) for v in listed["versions"]] == [
        ("r1", "ana", "fake shops"), ("r2", "bo", "the demo's")]
    code, back, _ = run(capsys, "rules", "--registry", registry, "rollback")
    assert code == 0 and back == {"alias": "production", "version": "r1", "location": back["location"]}
    assert RuleSetRegistry(open_registry(registry).store).aliases() == {"production": "r1", "staging": "r1"}
    code, _, err = run(capsys, "rules", "--registry", registry, "promote", "r9")
    assert code == 4 and err.startswith("error: ") and "r9" in err  # as for a model version (cli/errors.py)
    code, _, err = run(capsys, "rules", "--registry", registry, "save",
                       write(tmp_path / "bad.json", {"rules": [{**GOOD["rules"][0], "condition": "score > 2"}]}),
                       "--reason", "x")
    assert code == 1 and "not saved" in err
    assert RuleSetRegistry(open_registry(registry).store).describe()["versions"][-1]["version"] == "r2"  # nothing new


def test_backtest_on_a_saved_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = backtest_sample(tmp_path)
    good = write(tmp_path / "good.json", GOOD)
    picture = tmp_path / "b.png"
    code, report, err = run(capsys, "rules", "backtest", "--rules", good, "--sample", str(sample),
                            "--picture", str(picture))
    assert code == 0 and report["transactions"] == 3000 and report["rules"][0]["rule"] == "new_shop"
    assert "hits_by_day" not in report["rules"][0] and "days_list" not in report  # the JSON line stays one line
    assert "model + rules" in err and picture.read_bytes()[:4] == b"\x89PNG"
    shutil.copy(sample, tmp_path / "copy.npz")
    code, since, _ = run(capsys, "rules", "backtest", "--rules", good, "--sample", str(tmp_path / "copy.npz"),
                         "--since", "2026-03-04T00:00:00Z")
    assert code == 0 and since["transactions"] < 3000
    (tmp_path / "junk.npz").write_bytes(b"not a sample")
    code, _, err = run(capsys, "rules", "backtest", "--rules", good, "--sample", str(tmp_path / "junk.npz"))
    assert code == 1 and err.strip().splitlines()[-1].startswith(f"error: backtest sample {tmp_path / 'junk.npz'} unreadable")
