"""The models page: registry versions and aliases (promote, rollback), their pictures and drift."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, render_template, request

from txguard.console import drift, registry_view
from txguard.console.wiring import current_parts
from txguard.contract.errors import ConsoleError

blueprint = Blueprint("models", __name__)


def _drift() -> dict[str, Any]:
    """Drift per version, or why it cannot be shown (the rest of the page works without it)."""
    parts = current_parts()
    try:
        return {"versions": drift.drift_view(parts.drift.recent(), parts.settings.drift_psi_threshold),
                "source": parts.settings.drift_source, "error": None}
    except ConsoleError as exc:
        return {"versions": {}, "source": parts.settings.drift_source, "error": exc.message}


@blueprint.get("/models")
def page() -> Any:
    return render_template("models.html", registry=registry_view.overview(current_parts().registry), drift=_drift())


@blueprint.get("/api/models")
def api() -> Any:
    return jsonify({**registry_view.overview(current_parts().registry), "drift": _drift()})


@blueprint.post("/api/models/alias")
def alias() -> Any:
    parts = current_parts()
    result = registry_view.change_alias(parts.registry, request.get_data())
    parts.log.info("alias %s %s -> %s", result["alias"], result["action"], result["version"],
                   extra={"analyst": g.analyst, **result})
    return jsonify(result)


@blueprint.get("/models/<version>/pictures/<name>")
def picture(version: str, name: str) -> Any:
    data, content_type = registry_view.picture(current_parts().registry, version, name)
    return Response(data, mimetype=content_type, headers={"Cache-Control": "private, max-age=3600"})
