"""The models page: registry versions and aliases (promote, rollback), their pictures and drift.

Every alias move is logged as one line (`event: alias_move`) naming the analyst, the alias, the
version before and after and the quality-gate result of the version it now serves: the registry
write is made with the console's service account, so this line (and the alias object's
`updated_by`) is where the person is recorded."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, render_template, request

from txguard.console import drift, registry_view
from txguard.console.wiring import current_parts
from txguard.contract.errors import ConsoleError, ConsoleForbiddenError

blueprint = Blueprint("models", __name__)


def _drift() -> dict[str, Any]:
    """Drift per version, or why it cannot be shown (the rest of the page works without it)."""
    parts = current_parts()
    try:
        return {"versions": drift.drift_view(parts.drift.recent(), parts.settings.drift_psi_threshold, parts.log),
                "source": parts.settings.drift_source, "error": None}
    except ConsoleError as exc:
        return {"versions": {}, "source": parts.settings.drift_source, "error": exc.message}


@blueprint.get("/models")
def page() -> Any:
    parts = current_parts()
    return render_template("models.html", registry=registry_view.overview(parts.registry), drift=_drift(),
                           approver=parts.approvers.is_approver(g.analyst))


@blueprint.get("/api/models")
def api() -> Any:
    return jsonify({**registry_view.overview(current_parts().registry), "drift": _drift()})


@blueprint.post("/api/models/alias")
def alias() -> Any:
    parts = current_parts()
    try:
        result = registry_view.change_alias(parts.registry, request.get_data(), g.analyst, parts.approvers)
    except ConsoleForbiddenError as exc:
        parts.log.warning("alias move refused: %s", exc.message,
                          extra={"event": "alias_move_refused", "analyst": g.analyst})
        raise
    gate = result["gate"]["text"] if result["gate"] else "unknown"
    parts.log.info("%s moved %s from %s to %s (%s; quality gate %s)", g.analyst, result["alias"],
                   result["previous"] or "unset", result["version"], result["action"], gate,
                   extra={"event": "alias_move", "analyst": g.analyst, **result})
    return jsonify(result)


@blueprint.get("/models/<version>/pictures/<name>")
def picture(version: str, name: str) -> Any:
    data = registry_view.picture(current_parts().registry, version, name)
    # PNG only, never sniffed as anything else, and nothing in it may run or load.
    return Response(data, mimetype="image/png", headers={
        "Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox"})
