"""What the label function did with a label: the console's answer after a verdict, and `txguard
label --wait`'s counts.

The label function logs one JSON line per delivery (`label_id`, `status`: applied, unchanged,
duplicate, held, invalid, rejected, retry, error; txguard.enrichment.label_applier). The console reads
that line back for the label its verdict published, from the local label function's log file
(`LABEL_SOURCE=file:<path>`, which `txguard local up` sets) or from Cloud Logging
(`LABEL_SOURCE=cloud-logging`, the project's logs, roles/logging.viewer; or, as Pulumi sets it,
`cloud-logging:<log view>`, a log bucket that receives only the label function's final lines,
roles/logging.viewAccessor on its view alone), and says in words whether the verdict changed
anything and why not.
"""

from __future__ import annotations

import json
import os
from typing import Any, Protocol

from txguard.contract import names
from txguard.contract.errors import ConsoleUnavailableError

# A delivery's final status (acked) -> the word people read; retry and error are not final.
FINAL: dict[str, str] = {"applied": "applied", "unchanged": "unchanged", "duplicate": "duplicate",
                         "held": "held", "invalid": "parked", "rejected": "parked"}
MEANING: dict[str, str] = {
    "applied": "the counters changed: a new verdict, or one withdrawn",
    "unchanged": "recorded, but nothing changed: the transaction already carried this verdict (a chargeback or "
                 "an earlier verdict came first), so nothing is counted twice",
    "duplicate": "this label id was applied before: nothing counted twice",
    "held": "over a label limit, held for review (`txguard labels held list`): nothing counted unless someone "
            "releases it",
    "parked": "refused by the label function and parked on `invalid` with its reason (a label id reused for "
              "other content)",
    "pending": "no final line from the label function yet (still on its way, or retrying)",
    "unknown": "the console does not read the label function's log here (LABEL_SOURCE is not set)",
}
TAIL_BYTES = 4 * 1024 * 1024
LOGGING_URL = "https://logging.googleapis.com/v2/entries:list"


def outcome(label_id: str, source: LabelOutcomes | None) -> dict[str, Any]:
    """The page's answer for one label: its status word and what it means."""
    word = "unknown" if source is None else FINAL.get(source.status(label_id) or "", "pending")
    return {"label_id": label_id, "status": word, "meaning": MEANING[word]}


class LabelOutcomes(Protocol):
    def status(self, label_id: str) -> str | None:
        """The latest final status the label function logged for `label_id` (None: none yet)."""
        ...


class FileLabelOutcomes:
    """The local label function's log (the stack's `label.log`), read from its end."""

    def __init__(self, path: str) -> None:
        self.path = path

    def status(self, label_id: str) -> str | None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(max(0, os.fstat(fh.fileno()).st_size - TAIL_BYTES))
                text = fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConsoleUnavailableError(f"cannot read {self.path}: {exc}") from exc
        found = None
        needle = json.dumps(label_id)
        for line in text.splitlines():
            if needle not in line or not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("label_id") == label_id and entry.get("status") in FINAL:
                found = entry["status"]
        return found


class CloudLoggingLabelOutcomes:
    """Cloud Logging's entries.list (REST through google-auth) over the label function's lines, in the
    project's logs or in one log view (`view`: projects/P/locations/L/buckets/B/views/V)."""

    def __init__(self, project: str, service: str = names.LABEL_FUNCTION, session: Any = None,
                 view: str = "") -> None:
        self.project = project
        self.service = service
        self.view = view
        self._session = session

    def request_body(self, label_id: str) -> dict[str, Any]:
        return {
            "resourceNames": [self.view or f"projects/{self.project}"],
            "filter": (f'resource.type="cloud_run_revision" AND resource.labels.service_name="{self.service}" '
                       f"AND jsonPayload.label_id={json.dumps(label_id)}"),
            "orderBy": "timestamp desc",
            "pageSize": 5,
        }

    def status(self, label_id: str) -> str | None:
        if self._session is None:
            import google.auth
            from google.auth.transport.requests import AuthorizedSession

            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/logging.read"])
            self._session = AuthorizedSession(credentials)
        try:
            resp = self._session.post(LOGGING_URL, json=self.request_body(label_id), timeout=10)
        except Exception as exc:  # noqa: BLE001 - credentials or network: the page says so
            raise ConsoleUnavailableError(f"Cloud Logging did not answer: {exc}") from exc
        if resp.status_code != 200:
            raise ConsoleUnavailableError(f"Cloud Logging answered {resp.status_code}: {resp.text[:300]}")
        for entry in resp.json().get("entries", []):
            status = (entry.get("jsonPayload") or {}).get("status")
            if status in FINAL:
                return status
        return None


def label_source(spec: str, project: str) -> LabelOutcomes | None:
    """`LABEL_SOURCE`: "" (None: the page says it cannot tell), "cloud-logging", "cloud-logging:<log view>"
    or "file:<path>"."""
    if not spec:
        return None
    if spec == "cloud-logging":
        return CloudLoggingLabelOutcomes(project)
    if spec.startswith("cloud-logging:projects/"):
        return CloudLoggingLabelOutcomes(project, view=spec.removeprefix("cloud-logging:"))
    if spec.startswith("file:"):
        return FileLabelOutcomes(spec.removeprefix("file:"))
    raise ValueError(f"LABEL_SOURCE must be empty, cloud-logging[:<log view>] or file:<path>, got {spec!r}")
