"""The review queue: open items by outcome, one item, and an analyst's claim, release and verdict."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, render_template, request

from txguard.console import registry_view
from txguard.console.items import QUEUED_OUTCOMES, ReviewItem, utcnow
from txguard.console.wiring import current_parts
from txguard.contract.errors import ConsoleError, ConsoleNotFoundError
from txguard.contract.models import Outcome, Verdict

QUEUE_LIMIT = 100
OUTCOME_FILTERS = {"all": QUEUED_OUTCOMES, "review": (Outcome.REVIEW,), "block": (Outcome.BLOCK,)}

blueprint = Blueprint("queue", __name__)


def _filter() -> str:
    chosen = request.args.get("outcome", "all")
    if chosen not in OUTCOME_FILTERS:
        raise ConsoleError(f"outcome must be one of {', '.join(OUTCOME_FILTERS)}",
                           [{"loc": ["outcome"], "msg": "unknown filter"}])
    return chosen


def _item(transaction_id: str) -> ReviewItem:
    item = current_parts().queue.get(transaction_id)
    if item is None:
        raise ConsoleNotFoundError(f"no review item for transaction {transaction_id!r}")
    return item


@blueprint.get("/queue")
def page() -> Any:
    queue = current_parts().queue
    chosen = _filter()
    items = queue.open_items(OUTCOME_FILTERS[chosen], QUEUE_LIMIT)
    return render_template("queue.html", items=items, chosen=chosen, filters=list(OUTCOME_FILTERS),
                           counts=queue.open_counts(), now=utcnow())


@blueprint.get("/api/queue")
def api() -> Any:
    queue = current_parts().queue
    items = queue.open_items(OUTCOME_FILTERS[_filter()], QUEUE_LIMIT)
    return jsonify({"items": [i.model_dump(mode="json") for i in items], "counts": queue.open_counts()})


@blueprint.get("/queue/<transaction_id>")
def item_page(transaction_id: str) -> Any:
    item = _item(transaction_id)
    return render_template("item.html", item=item, verdicts=[v.value for v in Verdict],
                           holder=item.claim_holder(utcnow()),
                           score_meaning=registry_view.score_meaning(current_parts().registry, item.model_version))


@blueprint.get("/api/queue/<transaction_id>")
def item_api(transaction_id: str) -> Any:
    return jsonify(_item(transaction_id).model_dump(mode="json"))


@blueprint.post("/api/queue/<transaction_id>/claim")
def claim(transaction_id: str) -> Any:
    return jsonify(current_parts().reviews.claim(transaction_id, g.analyst).model_dump(mode="json"))


@blueprint.post("/api/queue/<transaction_id>/release")
def release(transaction_id: str) -> Any:
    return jsonify(current_parts().reviews.release(transaction_id, g.analyst).model_dump(mode="json"))


@blueprint.post("/api/queue/<transaction_id>/review")
def review(transaction_id: str) -> Any:
    return jsonify(current_parts().reviews.review(transaction_id, g.analyst, request.get_data()))
