"""`txguard label --wait`: what the label function did with the labels just published, read from
its log from where the log ended before the publish."""

from __future__ import annotations

import json
from pathlib import Path

from txguard.local.label_outcomes import LabelOutcomes


def append(log: Path, *entries: dict) -> None:
    with log.open("a") as fh:
        for entry in entries:
            fh.write(json.dumps(entry) + "\n")


def test_counts_the_final_status_of_each_published_label(tmp_path: Path) -> None:
    log = tmp_path / "label.log"
    append(log, {"label_id": "l-1", "status": "duplicate"})  # an earlier run's line: not this publish
    outcomes = LabelOutcomes(log).start()
    outcomes.expect(["l-1", "l-2", "l-3", "l-4", "l-5"])
    with log.open("a") as fh:
        fh.write("[INFO] gunicorn: booting worker\n")  # the server's own lines are skipped
    append(log,
           {"label_id": "l-1", "status": "applied"},
           {"label_id": "l-2", "status": "retry"},  # not final: still pending
           {"label_id": "l-3", "status": "unchanged"},
           {"label_id": "l-4", "status": "rejected", "reason": "label id reused for other content"},
           {"label_id": "other", "status": "applied"})  # someone else's label
    assert outcomes.wait(0.3, interval_s=0.05) == {"applied": 1, "unchanged": 1, "duplicate": 0, "held": 0,
                                                   "parked": 1, "pending": 2}
    assert outcomes.reasons == {"l-4": "label id reused for other content"}
    append(log, {"label_id": "l-2", "status": "applied"}, {"label_id": "l-5", "status": "duplicate"})
    assert outcomes.wait(5.0, interval_s=0.05) == {"applied": 2, "unchanged": 1, "duplicate": 1, "held": 0,
                                                   "parked": 1, "pending": 0}


def test_a_log_not_written_yet_leaves_every_label_pending(tmp_path: Path) -> None:
    outcomes = LabelOutcomes(tmp_path / "label.log").start()
    outcomes.expect(["l-1"])
    assert outcomes.wait(0.1, interval_s=0.05) == {"applied": 0, "unchanged": 0, "duplicate": 0, "held": 0,
                                                   "parked": 0, "pending": 1}
