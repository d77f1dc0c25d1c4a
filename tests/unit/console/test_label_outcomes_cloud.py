"""What a review item says its verdict changed, read from Cloud Logging: the project's logs or, as
Pulumi sets LABEL_SOURCE, the label log bucket's one view."""

from __future__ import annotations

import pytest

from tests.unit.console.test_console_drift import FakeSession
from txguard.console.label_outcomes import (
    FINAL,
    CloudLoggingLabelOutcomes,
    FileLabelOutcomes,
    label_source,
    outcome,
)
from txguard.contract.errors import ConsoleUnavailableError
from txguard.contract.settings import ConsoleSettings
from txguard.enrichment.label_applier import LabelStatus

VIEW = "projects/txguard-prod/locations/global/buckets/txguard-labels/views/label-outcomes"


def test_the_label_view_source_queries_that_view_for_the_label_and_reads_its_final_status() -> None:
    source = label_source(f"cloud-logging:{VIEW}", "txguard-prod")
    assert isinstance(source, CloudLoggingLabelOutcomes) and source.view == VIEW
    source._session = session = FakeSession(200, [{"jsonPayload": {"label_id": "lab-1", "status": "retry"}},
                                                  {"jsonPayload": {"label_id": "lab-1", "status": "unchanged"}}])
    assert outcome("lab-1", source)["status"] == "unchanged"  # retry is not final: the next line is
    url, body = session.bodies[0]
    assert url.endswith("/v2/entries:list") and body["resourceNames"] == [VIEW]
    assert 'resource.labels.service_name="txguard-label"' in body["filter"]
    assert 'jsonPayload.label_id="lab-1"' in body["filter"] and body["orderBy"] == "timestamp desc"


def test_the_project_logs_source_and_the_file_source_are_still_read() -> None:
    source = label_source("cloud-logging", "txguard-prod")
    assert isinstance(source, CloudLoggingLabelOutcomes) and source.view == ""
    assert source.request_body("lab-2")["resourceNames"] == ["projects/txguard-prod"]
    assert isinstance(label_source("file:/tmp/label.log", "p"), FileLabelOutcomes)
    assert label_source("", "p") is None and outcome("lab-2", None)["status"] == "unknown"


def test_a_refusal_of_cloud_logging_is_said_and_a_bad_source_is_refused_with_the_setting_named() -> None:
    with pytest.raises(ConsoleUnavailableError, match="403"):
        CloudLoggingLabelOutcomes("p", session=FakeSession(403, [])).status("lab-3")
    with pytest.raises(ValueError, match="LABEL_SOURCE"):
        label_source("cloud-logging:somewhere", "p")
    assert ConsoleSettings.model_validate({"LABEL_SOURCE": f"cloud-logging:{VIEW}"}).label_source.endswith(VIEW)
    with pytest.raises(ValueError, match="LABEL_SOURCE"):
        ConsoleSettings.model_validate({"LABEL_SOURCE": "cloud-logging:somewhere"})


def test_every_acked_status_of_the_label_function_has_a_word_and_a_meaning() -> None:
    """A held label (over a limit) is final too: the page says so instead of "pending" for ever."""
    acked = {s.value for s in LabelStatus} - {LabelStatus.RETRY.value, LabelStatus.ERROR.value}
    assert set(FINAL) == acked
    source = CloudLoggingLabelOutcomes("p", session=FakeSession(200, [{"jsonPayload": {"label_id": "l", "status": "held"}}]))
    said = outcome("l", source)
    assert said["status"] == "held" and "held for review" in said["meaning"]
