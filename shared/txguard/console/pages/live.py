"""The live view: counts, outcomes and latency of the decisions as they arrive, pushed over SSE."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, render_template

from txguard.console.wiring import current_parts

SSE_INTERVAL_S = 1.0
SSE_MAX_S = 300.0  # a stream ends after this long; EventSource reconnects by itself

blueprint = Blueprint("live", __name__)


@blueprint.get("/live")
def page() -> Any:
    return render_template("live.html", snapshot=current_parts().stats.snapshot())


@blueprint.get("/api/live")
def api() -> Any:
    return jsonify(current_parts().stats.snapshot())


@blueprint.get("/api/live/stream")
def stream() -> Response:
    stats = current_parts().stats  # the generator runs after the request context is gone

    def events() -> Iterator[str]:
        started = time.monotonic()
        while time.monotonic() - started < SSE_MAX_S:
            yield f"data: {json.dumps(stats.snapshot())}\n\n"
            time.sleep(SSE_INTERVAL_S)

    return Response(events(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
