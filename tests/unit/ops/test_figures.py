"""The README's figures come from docs/figures.json, rendered by `txguard figures`; never typed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from txguard.cli.main import main as cli
from txguard.ops import figures

ROOT = Path(__file__).resolve().parents[3]


def test_readme_blocks_match_the_committed_figures() -> None:
    readme = (ROOT / "README.md").read_text()
    assert figures.stale_blocks(readme, figures.load()) == [], "run `txguard figures render`"
    for name in figures.BLOCKS:
        assert f"<!-- figures:{name}" in readme and f"<!-- /figures:{name} -->" in readme


def test_every_committed_figure_names_the_command_that_produced_it() -> None:
    from txguard.cli.main import build_parser

    stored = figures.load()
    assert set(stored) >= set(figures.TABLE_KEYS)
    for key, entry in stored.items():
        assert key in figures.BY_KEY
        assert entry["command"].startswith("txguard ")
        args = [a.replace("<workdir>", "/tmp/w") for a in entry["command"].split()[1:]]
        build_parser().parse_args(args)  # a command that exists, with options that parse
        assert entry["measured_at"][:4] == "2026" and isinstance(entry["result"], dict)
        assert not entry["quick"], f"{key}: a --quick run is not a README figure"


def test_rendering_is_stable_and_a_changed_figure_is_caught() -> None:
    stored = figures.load()
    text = (ROOT / "README.md").read_text()
    assert figures.rewrite(text, stored) == text
    changed = json.loads(json.dumps(stored))
    changed["quality"]["result"]["pr_auc"] = 0.5
    assert figures.stale_blocks(text, changed) == ["table"]
    assert "PR-AUC 0.500" in figures.rewrite(text, changed)


def test_demo_block_says_when_the_demo_model_is_the_small_one() -> None:
    entry = {"command": "txguard local up", "measured_at": "2026-11-30T05:00:00+00:00", "quick": False,
             "machine": {"cpus": 2, "load_1m": 3.5},
             "result": {"mode": "emulators", "lost": 0, "precision": 0.52, "demo_model": "21 days x 800 wallets, "
                        "100 iterations"}}
    text = figures.render_demo({"demo": entry})
    assert '"precision": 0.52' in text and "small demo model" in text and "21 days x 800 wallets" in text
    assert "load average 3.5" in text
    assert "small demo model" not in figures.render_demo({"demo": {**entry, "result": {"lost": 0}}})


def test_missing_blocks_are_an_error_not_a_silent_no_op() -> None:
    with pytest.raises(ValueError, match="no <!-- figures:table -->"):
        figures.rewrite("# a README without markers\n", {})


def test_quick_run_proves_the_chain_without_touching_the_committed_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`txguard figures run --quick --only quality`: a real (small) training, into a scratch folder."""
    committed = (ROOT / "docs" / "figures.json").read_text()
    readme_before = (ROOT / "README.md").read_text()
    assert cli(["figures", "run", "--quick", "--only", "quality", "--workdir", str(tmp_path)]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["measured"] == ["quality"] and last["quick"] is True
    scratch = json.loads((tmp_path / "figures.json").read_text())
    result = scratch["quality"]["result"]
    assert result["gate"] == "passed" and 0 < result["pr_auc"] <= 1
    assert f"PR-AUC {result['pr_auc']:.3f}" in (tmp_path / "README.md").read_text()
    assert scratch["quality"]["command"].startswith("txguard train --registry <workdir>/registry --days 14")
    assert (ROOT / "docs" / "figures.json").read_text() == committed
    assert (ROOT / "README.md").read_text() == readme_before
    assert cli(["figures", "check", "--figures", str(tmp_path / "figures.json"),
                "--readme", str(tmp_path / "README.md")]) == 0
    assert cli(["figures", "run", "--only", "nope"]) == 2


def test_the_series_past_the_full_table_gives_its_sizes_memory_and_the_first_worlds_grading() -> None:
    def size(rows: int, worlds: int, sample: int, kept: int, rss: float, pr_auc: float, recall: float) -> dict:
        return {"history_rows": rows, "sample_rows": sample, "features_seconds": 360.4 * worlds,
                "worlds": {"count": worlds, "rows": [rows // worlds] * worlds},
                "sample_rows_by_weight": {"1": kept, "43.4": 21_500, "2170": 8_500},
                "sampled": {"peak_rss_mb": rss, "seconds": 40.7},
                "quality": {"sampled": {"pr_auc": pr_auc, "recall_at_1pct_fpr": recall}, "stand_in": {"pr_auc": 0.93}}}

    result = {"world_rows": 2_000_000, "results": [size(2_170_000, 1, 110_000, 80_000, 420.2, 0.93512, 0.9412),
                                                   size(21_700_000, 10, 790_000, 760_000, 1_050.2, 0.92011, 0.9523)]}
    ((what, command, text),) = figures.BY_KEY["bench_train_scale"].rows(result)
    assert command == "`txguard bench train`" and "past the full table" in what
    for shown in ("2,170,000 to 21,700,000 transactions as 1 to 10 worlds of 2,000,000", "3,604 s of features",
                  "samples of 110,000 to 790,000 rows (760,000 kept whole", "peaks at 420-1,050 MB",
                  "PR-AUC by size 0.9351, 0.9201", "recall at 1 % FPR 0.9412, 0.9523", "first world's held-out period"):
        assert shown in text, shown
    assert figures.BY_KEY["bench_train_scale"].rows({"results": []}) == []
