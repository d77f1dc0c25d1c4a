"""The figures of a run: a rich table, the last-line JSON, and docs/reliability.md.

The JSON line has one object per scenario with the common counts and what applies to it; the
document adds the command line, date, machine, the table, the bad-model reasons and the notes
(docs/reliability.md is written by the command, never by hand).
"""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from typing import Any

COMMON = ("sent", "transactions", "decided", "invalid", "dead_lettered", "redriven", "lost", "double_counted",
          "missing", "late", "features_differing", "features_unexplained", "cp_features_differing",
          "cp_features_explained", "cp_features_unexplained", "late_updates", "late_update_lag_s",
          "late_update_delay_s", "aggregate_cells", "aggregate_cells_differing", "open_leases")
EXTRA = ("wallets", "drain_s", "outage_s", "identical_decisions", "decision_copies", "poison", "poison_kinds",
         "refused", "kept_serving", "burst_rate", "backlog_at_end_of_burst", "drain_tps", "kills", "workers_killed",
         "fault_share", "failed_deliveries", "ordering", "retried", "skipped", "production_version",
         "promoted_version", "switched_promote_s", "switched_rollback_s", "scoring_5xx", "decisions_by_version",
         "decisions_not_matching", "production_rule_set", "promoted_rule_set", "decisions_by_rule_set",
         "decisions_by_rule", "decisions_rechecked", "labels_sent", "labels_published", "labels_applied", "labels_invalid",
         "labels_dead_lettered", "labels_lost", "labels_valid_on_invalid", "labels_invalid_without_reason",
         "label_statuses", "label_kinds_sent", "label_entities", "label_counters_compared", "labels_double_counted", "labels_missing", "label_frauds_replayed",
         "labels_held", "victim_counterparty", "genuine_sent", "genuine_applied", "forged_sent", "forged_parked",
         "wrong_route_sent", "wrong_route_parked", "mismatched_sent", "mismatched_parked", "storm_sent", "storm_limit",
         "storm_applied", "storm_held", "burst_sent", "burst_limit", "burst_applied", "burst_held", "released",
         "discarded", "victim_counters", "counters_applied", "counters_after_review",
         "aggregate_entities", "late_update_entities", "markers_left", "hot_share", "hot_transactions")
COLUMNS = ("scenario", "sent", "tx", "decided", "invalid", "dead-lettered", "redriven", "lost",
           "double counted", "late", "late updates", "cp differ (unexplained)", "drain s", "notes")


def compact(results: dict[str, Any]) -> dict[str, Any]:
    """The last-line object: per scenario the counts, what applies, `ok` and the failed checks."""
    out: dict[str, Any] = {}
    for name, r in results.items():
        row = {k: r[k] for k in COMMON + EXTRA if k in r}
        row["ok"] = not r.get("failed_checks") and (bool(r.get("skipped")) or (r.get("lost") == 0
                                                                                 and r.get("double_counted") == 0))
        if r.get("failed_checks"):
            row["failed_checks"] = r["failed_checks"]
        out[name] = row
    return out


def last_line(results: dict[str, Any], meta: dict[str, Any], ok: bool) -> str:
    return json.dumps({**compact(results), "passed": ok, "mode": meta.get("mode"), "push_mode": meta.get("push_mode"),
                       "profile": meta.get("profile")}, separators=(",", ":"))


def _note(r: dict[str, Any]) -> str:
    if r.get("skipped"):
        return f"skipped: {r['skipped']}"
    parts = []
    if "identical_decisions" in r:
        parts.append(f"{r.get('decision_copies')} decision copies, identical: {r['identical_decisions']}")
    if "poison_kinds" in r:
        parts.append(f"{r['poison']} poison of {r['poison_kinds']} kinds, all with a reason: "
                     f"{r.get('invalid_without_reason') == 0}")
    if r.get("outage_s") is not None:
        parts.append(f"down {r['outage_s']} s")
    if "refused" in r:
        parts.append(f"broken versions refused: {r['refused']}; running kept serving: {r['kept_serving']}")
    if "burst_rate" in r:
        parts.append(f"{r['burst_rate']:g} tx/s burst, backlog {r.get('backlog_at_end_of_burst')}, "
                     f"drained at {r.get('drain_tps')} tx/s")
    if "kills" in r:
        parts.append(f"{r['workers_killed']} enrichment workers SIGKILLed in {r['kills']} rounds")
    def seconds(d: dict[Any, float]) -> str:
        return "/".join(f"{v:.1f}" for v in sorted(d.values())) or "never"

    if "switched_promote_s" in r and "promoted_rule_set" in r:
        parts.append(f"rule set {r.get('promoted_rule_set')} promoted and rolled back to "
                     f"{r.get('production_rule_set')}: {r.get('scoring_workers')} scoring worker(s) switched after "
                     f"{seconds(r['switched_promote_s'])} s and back after {seconds(r['switched_rollback_s'])} s; "
                     f"decisions by rule set {r.get('decisions_by_rule_set')}, by rule {r.get('decisions_by_rule')}; "
                     f"{r.get('decisions_rechecked')} rechecked against the set they name, "
                     f"{r.get('decisions_not_matching')} not matching, {r.get('scoring_5xx')} scoring 5xx")
    elif "switched_promote_s" in r:
        parts.append(f"{r.get('promoted_version')} promoted and rolled back to {r.get('production_version')}: "
                     f"{r.get('scoring_workers')} scoring worker(s) switched after {seconds(r['switched_promote_s'])} s "
                     f"and back after {seconds(r['switched_rollback_s'])} s; decisions by version "
                     f"{r.get('decisions_by_version')}, {r.get('decisions_not_matching')} naming a version that did "
                     f"not score them, {r.get('scoring_5xx')} scoring 5xx")
    if "label_counters_compared" in r:
        parts.append(f"{r.get('labels_sent')} label messages ({r.get('label_kinds_sent')}): "
                     f"{r.get('labels_applied')} labels applied {r.get('label_statuses')}, {r.get('labels_invalid')} on "
                     f"invalid, {r.get('labels_lost')} lost; label counters of {r.get('label_entities')} entities vs the "
                     f"offline replay ({r.get('label_frauds_replayed')} frauds): {r.get('labels_double_counted')} double "
                     f"counted, {r.get('labels_missing')} missing")
    if "storm_sent" in r:
        parts.append(f"parked: {r.get('forged_parked')}/{r.get('forged_sent')} forged, {r.get('wrong_route_parked')}/"
                     f"{r.get('wrong_route_sent')} wrong route, {r.get('mismatched_parked')}/{r.get('mismatched_sent')} "
                     f"mismatched; storm {r.get('storm_applied')} applied (limit {r.get('storm_limit')}), "
                     f"{r.get('storm_held')} held, {r.get('discarded')} discarded; burst {r.get('burst_applied')} applied "
                     f"(limit {r.get('burst_limit')}), {r.get('burst_held')} held, {r.get('released')} released; "
                     f"genuine {r.get('genuine_applied')}/{r.get('genuine_sent')} applied")
    if "failed_deliveries" in r:
        parts.append(f"{r['failed_deliveries']} deliveries failed on purpose ({r.get('fault_share', 0):.0%})")
    if r.get("features_compared"):
        parts.append(f"features of {r['features_compared']} transactions vs replay: {r.get('features_differing')} "
                     f"differ ({r.get('features_unexplained')} unexplained), {r.get('late')} late")
    if r.get("cp_features_compared"):
        parts.append(_counterparty_note(r))
    if r.get("retried"):
        parts.append("deliveries answered 503 (retry): " + ", ".join(f"{n} {k}" for k, n in r["retried"].items()))
    if r.get("failed_checks"):
        parts.append("FAILED: " + "; ".join(r["failed_checks"]))
    return "; ".join(parts)


def _counterparty_note(r: dict[str, Any]) -> str:
    lag, held = r.get("late_update_lag_s") or {}, r.get("late_update_delay_s") or {}
    text = (f"counterparty features of {r['cp_features_compared']} transactions vs replay: "
            f"{r.get('cp_features_differing')} differ ({r.get('cp_features_explained')} explained by a logged late "
            f"update, {r.get('cp_features_unexplained')} unexplained); {r.get('late_updates')} late updates at "
            f"{r.get('late_update_entities')} entities")
    if r.get("late_updates"):
        text += f" (lag in event time p50 {lag.get('p50')} s, p90 {lag.get('p90')} s, max {lag.get('max')} s"
        if held.get("max") is not None:
            text += f"; transactions held back p50 {held.get('p50')} s, max {held.get('max')} s after publishing"
        text += ")"
    text += (f"; aggregates of {r.get('aggregate_entities')} entities ({r.get('aggregate_cells')} counters) vs replay: "
             f"{r.get('aggregate_cells_differing')} differ; {r.get('open_leases')} leases left open")
    if r.get("markers_left") is not None:
        text += f", {r['markers_left']} markers left to garbage collection"
    return text


def rows(results: dict[str, Any]) -> list[list[str]]:
    def v(r: dict[str, Any], k: str) -> str:
        return "-" if r.get(k) is None else str(r[k])

    def cp(r: dict[str, Any]) -> str:
        return "-" if r.get("cp_features_differing") is None else \
            f"{r['cp_features_differing']} ({r.get('cp_features_unexplained')})"

    return [[name, v(r, "sent"), v(r, "transactions"), v(r, "decided"), v(r, "invalid"), v(r, "dead_lettered"),
             v(r, "redriven"), v(r, "lost"), v(r, "double_counted"), v(r, "late"), v(r, "late_updates"), cp(r),
             v(r, "drain_s"), _note(r)]
            for name, r in results.items()]


def table(results: dict[str, Any]) -> Any:
    """The counts as a rich table, each scenario's notes under it (a terminal is narrow)."""
    from rich.console import Group
    from rich.table import Table

    t = Table(title="txguard reliability")
    for col in COLUMNS[:-1]:
        t.add_column(col, justify="left" if col == "scenario" else "right", no_wrap=True)
    notes = []
    for row in rows(results):
        t.add_row(*row[:-1])
        notes.append(f"[bold]{row[0]}[/]: {row[-1]}")
    return Group(t, *notes)


def machine() -> str:
    cpus = os.cpu_count()
    return f"{platform.system()} {platform.machine()}, {cpus} CPUs, Python {platform.python_version()}"


def markdown(results: dict[str, Any], meta: dict[str, Any], ok: bool, command: str, notes: str) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Reliability",
        "",
        "Generated by `txguard reliability` (scripts/txguard/reliability/); do not edit by hand, rerun it:",
        "",
        "```",
        command,
        "```",
        "",
        f"- Date: {now}; machine: {machine()} (shared with other work: timings are noisy).",
        f"- Mode: {meta.get('mode')}, push {meta.get('push_mode')} (ordering by wallet: {meta.get('ordering')}), "
        f"profile {meta.get('profile')}, nominal rate {meta.get('nominal_rate')} tx/s, "
        f"model {meta.get('model_version')}, run time {meta.get('total_s')} s.",
        f"- Verdict: **{'passed' if ok else 'FAILED'}** (exit code {0 if ok else 1}): lost = 0 and "
        "double_counted = 0 in every scenario, the counterparty, device and label aggregates equal to the "
        "offline replay, every transaction scored on the features the replay gives it (or the difference "
        "explained: by a transaction flagged late for its wallet's features, by a logged late update for its "
        "counterparty's), and every scenario's own checks hold.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows(results)]
    broken = (results.get("bad_model") or {}).get("broken") or {}
    if broken:
        lines += ["", "Bad model, fresh scoring function on each broken version (HTTP status and reason "
                  "from `/health`, the CRITICAL log line):", ""]
        for kind, b in broken.items():
            lines.append(f"- `{kind}` ({b.get('version')}): /health {b.get('health')}, /score {b.get('score')}, "
                         f"reason: `{b.get('reason')}`; log: `{b.get('log')}`")
        bm = results["bad_model"]
        lines.append(f"- Running function: kept serving {bm.get('running_model_version')} "
                     f"(`/health` 200 and `/score` 200): {bm.get('kept_serving')}.")
    lines += ["", "Last line of the run:", "", "```json", last_line(results, meta, ok), "```", "", notes.strip(), ""]
    return "\n".join(lines)
