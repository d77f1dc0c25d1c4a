"""`txguard bench features`: both replays on the same tiny Handbook-style data, identical rows."""

from __future__ import annotations

import json

import pytest

from txguard.bench.features import feature_figures
from txguard.cli.main import main


def test_reference_and_twin_build_the_same_rows() -> None:
    figures = feature_figures(customers=60, terminals=120, days=20, seed=3, reference_rows=0, log=lambda _m: None)
    assert figures["identical_rows"] is True
    assert figures["data"]["rows"] == figures["reference"]["rows"] == figures["twin"]["rows"] > 1000
    assert figures["data"]["labels"] > 0
    assert figures["reference"]["rows_per_cpu_s"] > 0 and figures["twin"]["rows_per_cpu_s"] > 0


def test_reference_on_a_prefix_is_compared_on_that_prefix() -> None:
    figures = feature_figures(customers=60, terminals=120, days=20, seed=3, reference_rows=500, log=lambda _m: None)
    assert figures["reference"]["rows"] == 500 < figures["twin"]["rows"]
    assert figures["identical_rows"] is True


def test_command_prints_one_json_line_last(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "features", "--customers", "40", "--terminals", "80", "--days", "12"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    report = json.loads(out[-1])
    assert report["identical_rows"] is True and report["speedup"] is not None
