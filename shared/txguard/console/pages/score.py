"""Manual scoring: a transaction from the form, scored on the wallet's stored history as of now
(txguard.console.manual; nothing is written)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, request

from txguard.console import manual
from txguard.console.wiring import current_parts
from txguard.contract.models import Channel, TxType

blueprint = Blueprint("score", __name__)


@blueprint.get("/score")
def page() -> Any:
    return render_template("score.html", types=[t.value for t in TxType], channels=[c.value for c in Channel])


@blueprint.post("/api/score")
def api() -> Any:
    parts = current_parts()
    return jsonify(manual.score_manually(parts.history, parts.counterparties, parts.scorer, request.get_data()))
