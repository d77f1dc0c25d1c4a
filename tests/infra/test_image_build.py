"""The console's image build (infra/image_build.py): the Build it submits is the one `gcloud builds
submit --pack` makes, and the client waits for it and returns the pushed digest, or stops `pulumi up`
with the reason. The client talks HTTP to a local stand-in for Cloud Build's REST API on 127.0.0.1
(builds.create, builds.get); every wait is bounded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.image_build import (
    BUILDER,
    BuildError,
    CloudBuild,
    SourceBuild,
    SourceImageProvider,
    python_version,
)
from tests.conftest import require

GCLOUD = shutil.which("gcloud")
SDK = Path(GCLOUD).resolve().parents[1] / "lib" if GCLOUD else Path("/nonexistent")
SPEC = SourceBuild(project="txguard-dev", location="europe-west1", bucket="txguard-dev-txguard-sources",
                   object="console-0123456789abcdef.zip",
                   image="europe-west1-docker.pkg.dev/txguard-dev/txguard-functions/txguard-console",
                   tag="0123456789abcdef", function_target="console", python_version="3.11.x",
                   service_account="projects/txguard-dev/serviceAccounts/txguard-build@txguard-dev.iam.gserviceaccount.com")
DIGEST = "sha256:" + "ab" * 32


class FakeCloudBuild:
    """builds.create answers an operation naming build `b-1`; builds.get walks through `statuses`."""

    def __init__(self, statuses: list[dict[str, Any]], create_status: int = 200) -> None:
        self.statuses = statuses
        self.create_status = create_status
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.polls = 0

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.created.append((self.path, body))
                if fake.create_status != 200:
                    self._answer(fake.create_status, {"error": {"message": "permission denied"}})
                    return
                self._answer(200, {"name": "projects/txguard-dev/locations/europe-west1/operations/op-1",
                                   "metadata": {"build": {"id": "b-1", "status": "QUEUED"}}})

            def do_GET(self) -> None:  # noqa: N802
                assert self.path.endswith("/builds/b-1"), self.path
                state = fake.statuses[min(fake.polls, len(fake.statuses) - 1)]
                fake.polls += 1
                self._answer(200, {"id": "b-1", "logUrl": "https://console.cloud.google.com/cloud-build/b-1", **state})

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def serve() -> Iterator[Any]:
    servers = []

    def start(fake: FakeCloudBuild) -> CloudBuild:
        server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return CloudBuild(session=requests.Session(), base_url=f"http://127.0.0.1:{server.server_port}/v1",
                          poll_s=0.05, timeout_s=5)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def pushed(name: str = f"{SPEC.image}:{SPEC.tag}") -> dict[str, Any]:
    return {"status": "SUCCESS", "results": {"images": [{"name": name, "digest": DIGEST}]}}


def test_the_build_is_submitted_waited_for_and_pinned_by_digest(serve: Any) -> None:
    fake = FakeCloudBuild([{"status": "QUEUED"}, {"status": "WORKING"}, pushed()])
    built = serve(fake).build(SPEC)
    assert built.image_ref == f"{SPEC.image}@{DIGEST}" and built.digest == DIGEST and built.build_id == "b-1"
    assert fake.polls == 3
    ((path, body),) = fake.created
    assert path == "/v1/projects/txguard-dev/locations/europe-west1/builds"
    assert body["source"] == {"storageSource": {"bucket": SPEC.bucket, "object": SPEC.object}}
    (step,) = body["steps"]
    assert step["name"] == "gcr.io/k8s-skaffold/pack" and step["args"][:2] == ["build", f"{SPEC.image}:{SPEC.tag}"]
    assert {"GOOGLE_FUNCTION_TARGET=console", "GOOGLE_FUNCTION_SIGNATURE_TYPE=http",
            "GOOGLE_PYTHON_VERSION=3.11.x"} <= set(step["args"])
    assert body["images"] == [f"{SPEC.image}:{SPEC.tag}"]
    # As the build identity, with logs in Cloud Logging (a chosen build account must say where they go).
    assert body["serviceAccount"] == SPEC.service_account and body["options"] == {"logging": "CLOUD_LOGGING_ONLY"}


@pytest.mark.parametrize(("statuses", "create_status", "message"), [
    ([{"status": "FAILURE", "statusDetail": "step 0 exited 1"}], 200, "ended FAILURE: step 0 exited 1"),
    ([{"status": "TIMEOUT"}], 200, "ended TIMEOUT"),
    ([pushed(name="elsewhere/other:tag")], 200, "pushed no"),
    ([], 403, "refused the build.*403"),
    ([{"status": "WORKING"}], 200, "not finished after"),
])
def test_a_build_that_does_not_push_the_image_stops_the_deploy(serve: Any, statuses: list[dict[str, Any]],
                                                                 create_status: int, message: str) -> None:
    fake = FakeCloudBuild(statuses or [{"status": "QUEUED"}], create_status)
    client = serve(fake)
    client.timeout_s = 0.5
    with pytest.raises(BuildError, match=message):
        client.build(SPEC)


def test_without_a_build_identity_the_project_default_builds() -> None:
    default = SourceBuild(**{**SPEC.__dict__, "service_account": ""}).request()
    assert "serviceAccount" not in default and "options" not in default


# Run by a separate interpreter with the Cloud SDK's own lib/ on its path: the SDK's modules are part of
# the gcloud installation, not a Python dependency of this project.
GCLOUD_PACK = """
import json, sys
from apitools.base.py import encoding
from googlecloudsdk.api_lib.cloudbuild import cloudbuild_util
from googlecloudsdk.command_lib.builds import submit_util
source, pack = json.loads(sys.argv[1])
build = submit_util._SetBuildSteps(None, False, cloudbuild_util.GetMessagesModule(), None, None, False, source,
                                   "1200s", pack, None)
print(encoding.MessageToJson(build))
"""


def test_the_request_is_what_gcloud_builds_submit_pack_submits() -> None:
    """The steps and images equal those the installed gcloud builds for `--pack` with the same image,
    builder and environment (googlecloudsdk/command_lib/builds/submit_util.py)."""
    require((SDK / "googlecloudsdk").is_dir(), "the Google Cloud SDK is not installed")
    ours = SPEC.request()
    args = ours["steps"][0]["args"]
    envs = [a for i, a in enumerate(args) if args[i - 1] == "--env"]
    pack = [{"image": f"{SPEC.image}:{SPEC.tag}", "builder": BUILDER, "envs": envs}]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SDK), str(SDK / "third_party")])}
    done = subprocess.run([sys.executable, "-c", GCLOUD_PACK, json.dumps([f"gs://{SPEC.bucket}/{SPEC.object}", pack])],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = json.loads(done.stdout)
    assert ours["steps"] == theirs["steps"] and ours["images"] == theirs["images"]
    assert ours["timeout"] == theirs["timeout"]


def test_any_change_of_the_source_or_recipe_is_a_new_build() -> None:
    provider = SourceImageProvider()
    olds = {**SPEC.__dict__, "image_ref": f"{SPEC.image}@{DIGEST}", "digest": DIGEST, "build_id": "b-1"}
    assert provider.diff("b-1", olds, dict(SPEC.__dict__)).changes is False  # outputs are not inputs
    news = {**SPEC.__dict__, "object": "console-fedcba9876543210.zip", "tag": "fedcba9876543210"}
    diff = provider.diff("b-1", olds, news)
    assert diff.changes is True and sorted(diff.replaces) == ["object", "tag"]


def test_python_version_follows_the_functions_runtime() -> None:
    assert [python_version(r) for r in ("python310", "python311", "python313")] == ["3.10.x", "3.11.x", "3.13.x"]
    with pytest.raises(ValueError, match="runtime"):
        python_version("nodejs20")
