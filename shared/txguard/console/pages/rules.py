"""The Rules page: write a rule set, see its check errors inline, backtest it, save it to staging, and
(an approver) promote it to production or roll production back (txguard.console.rules_view)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, g, jsonify, render_template, request

from txguard.console import rules_view
from txguard.console.wiring import current_parts
from txguard.rules.vocabulary import NAMES, NUMBER

blueprint = Blueprint("rules", __name__)


@blueprint.get("/rules")
def page() -> Any:
    parts = current_parts()
    overview = rules_view.overview(parts.registry)
    start = overview["aliases"].get("staging") or overview["aliases"].get("production")
    draft = {"rules": start["rules"] if start else []}
    names = {"numbers": sorted(n for n, v in NAMES.items() if v.kind == NUMBER),
             "text": sorted(n for n, v in NAMES.items() if v.kind != NUMBER)}
    return render_template("rules.html", overview=overview, draft=json.dumps(draft), names=names,
                           approver=parts.approvers.is_approver(g.analyst or ""),
                           backtest_sample=parts.settings.backtest_sample)


@blueprint.get("/api/rules")
def api() -> Any:
    return jsonify(rules_view.overview(current_parts().registry))


@blueprint.post("/api/rules/check")
def check() -> Any:
    return jsonify(rules_view.check(request.get_data()))


@blueprint.post("/api/rules/backtest")
def backtest() -> Any:
    return jsonify(rules_view.backtest(request.get_data(), current_parts().settings))


@blueprint.post("/api/rules/save")
def save() -> Any:
    parts = current_parts()
    result = rules_view.save(request.get_data(), parts.registry, g.analyst)
    parts.log.info("rule set %s saved to staging by %s", result["version"], g.analyst,
                   extra={"analyst": g.analyst, "rule_set": result["version"], "reason": result["reason"]})
    return jsonify(result)


@blueprint.post("/api/rules/production")
def production() -> Any:
    parts = current_parts()
    result = rules_view.move_production(request.get_data(), parts.registry, g.analyst, parts.approvers)
    parts.log.info("production rule set %s -> %s by %s", result["action"], result["version"], g.analyst,
                   extra={"analyst": g.analyst, **result})
    return jsonify(result)
