"""What became of a label: the item page asks after a verdict whether it changed anything."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from txguard.console.label_outcomes import outcome
from txguard.console.wiring import current_parts

blueprint = Blueprint("labels", __name__)


@blueprint.get("/api/labels/<label_id>")
def status(label_id: str) -> Any:
    """`{"label_id", "status": applied | unchanged | duplicate | parked | pending | unknown, "meaning"}`."""
    return jsonify(outcome(label_id, current_parts().labels))
