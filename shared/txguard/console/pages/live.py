"""The live view: counts, outcomes and latency of the decisions as they arrive, pushed over SSE.

A stream holds a server thread for up to SSE_MAX_S, so only `CONSOLE_LIVE_STREAMS` run at once
(`ConsoleParts.streams`); past that the stream answers 503 and the page polls `/api/live` every two
seconds: twenty open Live tabs cannot take the threads that claims and verdicts need."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, render_template

from txguard.console.wiring import current_parts
from txguard.contract.errors import ConsoleUnavailableError

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
    parts = current_parts()
    stats, slots = parts.stats, parts.streams  # the generator runs after the request context is gone
    if not slots.take():
        raise ConsoleUnavailableError(f"{slots.limit} live streams are open already: this page polls instead")
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            slots.give_back()

    def events() -> Iterator[str]:
        started = time.monotonic()
        try:
            while time.monotonic() - started < SSE_MAX_S:
                yield f"data: {json.dumps(stats.snapshot())}\n\n"
                time.sleep(SSE_INTERVAL_S)
        finally:  # the client went away (the server closes the generator) or the stream ended
            release()

    response = Response(events(), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(release)  # a stream closed before its first chunk
    return response
