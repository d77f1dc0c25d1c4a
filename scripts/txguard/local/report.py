"""What `txguard local up` shows: a live line while the stream flows, a summary at the end, and
the one-line form of a decision (`txguard decisions`, and `local up --keep` in embedded mode).

The summary's last line is one JSON object (the convention for report-like commands), so a
script or a test reads the figures without parsing the tables.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from txguard.contract import names

LAST_LINE_KEYS = ("mode", "published", "decided", "invalid", "dead_lettered", "lost",
                  "e2e_p50_ms", "e2e_p95_ms", "e2e_p99_ms", "labels_published", "labels_applied", "labels_lost")


def live(counts: dict[str, int], latency_ms: float | None, mode: str, phase: str, elapsed_s: float,
         labels: dict[str, Any] | None = None) -> Any:
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    cells = [
        f"[bold]{mode}[/] {phase}",
        f"published [cyan]{counts['published']}[/]/{counts['sent']}",
        f"decided [green]{counts['decided']}[/]",
        f"invalid [yellow]{counts['invalid']}[/]",
        f"dead-lettered [red]{counts['dead_lettered']}[/]",
        f"pending {counts['pending']}",
        f"e2e p50 {'-' if latency_ms is None else f'{latency_ms:.0f} ms'}",
        *([f"labels applied [magenta]{labels['labels_applied']}[/]/{labels['labels_sent']}"] if labels else []),
        f"{elapsed_s:5.1f}s",
    ]
    table.add_row(*cells)
    return table


def summary_table(summary: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"txguard local pipeline ({summary['mode']} mode)", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    d = summary["decisions"]
    rows = [
        ("published", f"{summary['published']} ({summary['poison']} invalid on purpose, "
                      f"{summary['publish_failed']} publish failures)"),
        ("decided", f"{summary['decided']}  (allow {d['allow']}, review {d['review']}, block {d['block']})"),
        ("invalid", f"{summary['invalid']}  {summary['invalid_kinds'] or ''}"),
        ("dead-lettered", str(summary["dead_lettered"])),
        ("lost", str(summary["lost"])),
        ("labels", f"{summary.get('labels_published', 0)} published, {summary.get('labels_applied', 0)} applied "
                   f"{summary.get('label_statuses') or ''}, {summary.get('labels_invalid', 0)} invalid, "
                   f"{summary.get('labels_dead_lettered', 0)} dead-lettered, {summary.get('labels_lost', 0)} lost"
                   + (f" (a day of delay = {summary['label_day_s']:g} s)" if summary.get("label_day_s") else "")),
        ("precision / recall", f"{_pct(summary['precision'])} / {_pct(summary['recall'])}  "
                               f"({summary['true_positives']} of {summary['fraud_labelled']} frauds caught, "
                               f"{summary['false_positives']} false alarms; block+review = positive)"),
        ("caught / missed", f"{summary['caught_by_scenario']} / {summary['missed_by_scenario']}"),
        ("rules", (f"{summary.get('decisions_with_rules', 0)} decisions where a rule fired, by rule "
                   f"{summary.get('decisions_by_rule') or {}}; frauds caught where a rule fired, by scenario "
                   f"{summary.get('frauds_hit_by_rules') or {}}; rule set {summary.get('rule_sets') or 'none'}")),
        ("end-to-end latency", f"p50 {summary['e2e_p50_ms']} ms, p95 {summary['e2e_p95_ms']} ms, "
                               f"p99 {summary['e2e_p99_ms']} ms, max {summary['e2e_max_ms']} ms"),
        ("publish rate", f"{summary.get('publish_rate_tps')} tx/s over {summary.get('publish_seconds')} s"),
        ("model", f"{summary.get('model_version')}" + (
            f" (demo model: {summary['demo_model']}; `txguard train`'s default model is larger and more precise)"
            if summary.get("demo_model") else "")),
        ("errors", f"duplicates {summary['duplicates']}, valid on invalid {summary['valid_on_invalid']}, "
                   f"unmatched {summary.get('unmatched') or 0}"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def format_decision(data: bytes, attributes: dict[str, str], decided_at_ms: int | None = None,
                    now_ms: int | None = None) -> str:
    """One human line for a decision message (tolerant: a malformed body is shown raw).

    `decided_at_ms` is the decision message's publish time; without it (an old caller), the
    latency falls back to the time of printing.
    """
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    stamp = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]
    try:
        doc = json.loads(data)
        outcome = str(doc["outcome"]).upper()
        score = float(doc["score"])
    except (ValueError, KeyError, TypeError):
        return f"{stamp}  ?       {data[:200]!r}"
    latency = ""
    published_at = attributes.get(names.ATTR_PUBLISHED_AT)
    if published_at and published_at.isdigit():
        latency = f"  e2e={(decided_at_ms if decided_at_ms is not None else now_ms) - int(published_at)}ms"
    if decided_at_ms is not None:
        latency += f"  waited={max(0, now_ms - decided_at_ms)}ms"
    reasons = ",".join(doc.get("reasons") or []) or "-"
    return (
        f"{stamp}  {outcome:<6}  {score:5.3f}  {doc.get('transaction_id', '?')}  wallet={doc.get('wallet_id', '?')}"
        f"  model={doc.get('model_version', '?')}{latency}  reasons={reasons}"
    )
