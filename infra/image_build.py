"""A container image built by Cloud Build from a source archive, during `pulumi up`, pinned by digest.

Why this exists: a `cloudrunv2.Service` cannot build its own source. Its `build_config` only records
how a source deploy was built (hashicorp/terraform-provider-google #22263 and #23057; a Google
reviewer on GoogleCloudPlatform/terraform-google-cloud-run PR #398: "The build_config block will not
actually kick off a build"), so a service declared with it runs whatever `image` says. The analyst
console must stay a Cloud Run service (one instance with CPU always allocated, IAP on the service;
docs/infra.md, "The console's deployment path"), so the program builds its image itself: this
resource submits one Cloud Build build of the content-hashed archive and waits for it; the service
then runs `<repository>/<name>@sha256:<digest>` (`image_ref`), which exists only once the build has pushed it.

The build is the one `gcloud builds submit --pack` submits (googlecloudsdk/command_lib/builds/
submit_util.py: a `pack build` step on `gcr.io/k8s-skaffold/pack`, the image in `images` so Cloud
Build records its digest), with Google's buildpacks builder and the functions-framework variables
(`GOOGLE_FUNCTION_TARGET`, `GOOGLE_FUNCTION_SIGNATURE_TYPE`, `GOOGLE_PYTHON_VERSION`): Google's
recipe for building a function into a Cloud Run image ("Build a function with buildpacks"). The
archive's `requirements.txt` is the hash-pinned runtime lock, as for the functions.

`CloudBuild` is the client (Cloud Build REST v1: builds.create, then builds.get until the build is
final); tests drive it against a local HTTP server. `SourceImageProvider` is the Pulumi dynamic
provider around it: a change of any input is a new build (replace); deleting keeps the image (the
repository's cleanup policy ages it out). Imports of Google's libraries happen inside methods:
the provider is pickled into the stack state and runs in Pulumi's dynamic provider process.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import pulumi
from pulumi import dynamic

CLOUD_BUILD_URL = "https://cloudbuild.googleapis.com/v1"
PACK_STEP = "gcr.io/k8s-skaffold/pack"  # what `gcloud builds submit --pack` runs
BUILDER = "gcr.io/buildpacks/builder:google-22"  # Ubuntu 22, the stack of the python310..313 runtimes
BUILD_TIMEOUT_S = 1200
POLL_S = 5.0
FINAL = {"SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"}


class BuildError(RuntimeError):
    """The build did not produce the image (refused, failed, timed out): `pulumi up` stops here."""


def python_version(runtime: str) -> str:
    """`python311` -> `3.11.x` (GOOGLE_PYTHON_VERSION: the latest patch of the functions' minor version)."""
    digits = runtime.removeprefix("python")
    if not digits.isdigit() or len(digits) < 3:
        raise ValueError(f"not a Python runtime id: {runtime!r}")
    return f"{digits[0]}.{digits[1:]}.x"


@dataclass(frozen=True)
class SourceBuild:
    """What to build: a zip in Cloud Storage, built as a functions-framework app, pushed to `image:tag`."""

    project: str
    location: str  # the Cloud Build region (the stack's region)
    bucket: str
    object: str  # the content-hashed archive, e.g. console-<sha256[:16]>.zip
    image: str  # Artifact Registry path without tag or digest
    tag: str  # the archive's content hash: one tag per source
    function_target: str
    python_version: str
    signature_type: str = "http"
    builder: str = BUILDER
    service_account: str = ""  # projects/P/serviceAccounts/EMAIL; "" = the project's default build identity

    def request(self) -> dict[str, Any]:
        """The Build resource of builds.create."""
        image = f"{self.image}:{self.tag}"
        env = {"GOOGLE_FUNCTION_TARGET": self.function_target,
               "GOOGLE_FUNCTION_SIGNATURE_TYPE": self.signature_type,
               "GOOGLE_PYTHON_VERSION": self.python_version}
        args = ["build", image, "--network", "cloudbuild"]  # the order `gcloud builds submit --pack` uses
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        args += ["--builder", self.builder]
        build: dict[str, Any] = {
            "source": {"storageSource": {"bucket": self.bucket, "object": self.object}},
            "steps": [{"name": PACK_STEP, "entrypoint": "pack", "args": args}],
            "images": [image],
            "timeout": f"{BUILD_TIMEOUT_S}s",
            "tags": ["txguard", self.function_target],
        }
        if self.service_account:
            # A build that runs as a chosen account must say where its logs go; this one writes them
            # to Cloud Logging (the build account holds roles/logging.logWriter).
            build["serviceAccount"] = self.service_account
            build["options"] = {"logging": "CLOUD_LOGGING_ONLY"}
        return build


@dataclass(frozen=True)
class BuiltImage:
    build_id: str
    image_ref: str  # <image>@sha256:...
    digest: str
    log_url: str


class CloudBuild:
    """builds.create, then builds.get every `poll_s` until the build is final; bounded by `timeout_s`."""

    def __init__(self, session: Any = None, base_url: str = CLOUD_BUILD_URL, poll_s: float = POLL_S,
                 timeout_s: float = BUILD_TIMEOUT_S + 300) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")
        self.poll_s = poll_s
        self.timeout_s = timeout_s

    def _authorized(self) -> Any:
        if self._session is None:
            import google.auth
            from google.auth.transport.requests import AuthorizedSession

            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
            self._session = AuthorizedSession(credentials)
        return self._session

    def build(self, spec: SourceBuild) -> BuiltImage:
        session = self._authorized()
        parent = f"{self.base_url}/projects/{spec.project}/locations/{spec.location}/builds"
        resp = session.post(parent, json=spec.request(), timeout=60)
        if resp.status_code != 200:
            raise BuildError(f"Cloud Build refused the build of gs://{spec.bucket}/{spec.object}: "
                             f"{resp.status_code} {resp.text[:500]}")
        build_id = resp.json().get("metadata", {}).get("build", {}).get("id")
        if not build_id:
            raise BuildError(f"Cloud Build answered without a build id: {resp.text[:500]}")
        deadline = time.monotonic() + self.timeout_s
        while True:
            got = session.get(f"{parent}/{build_id}", timeout=60)
            if got.status_code == 200:
                build = got.json()
                if build.get("status") in FINAL:
                    return self._result(spec, build_id, build)
            elif got.status_code not in (429, 500, 502, 503, 504):
                raise BuildError(f"cannot read build {build_id}: {got.status_code} {got.text[:500]}")
            if time.monotonic() > deadline:
                raise BuildError(f"build {build_id} not finished after {self.timeout_s:.0f}s")
            time.sleep(self.poll_s)

    @staticmethod
    def _result(spec: SourceBuild, build_id: str, build: dict[str, Any]) -> BuiltImage:
        log_url = str(build.get("logUrl", ""))
        if build["status"] != "SUCCESS":
            raise BuildError(f"build {build_id} of gs://{spec.bucket}/{spec.object} ended {build['status']}: "
                             f"{build.get('statusDetail', '')} (logs: {log_url})")
        wanted = f"{spec.image}:{spec.tag}"
        digests = [i.get("digest") for i in build.get("results", {}).get("images", []) if i.get("name") == wanted]
        if not digests or not str(digests[0]).startswith("sha256:"):
            raise BuildError(f"build {build_id} succeeded but pushed no {wanted} (logs: {log_url})")
        return BuiltImage(build_id, f"{spec.image}@{digests[0]}", str(digests[0]), log_url)


INPUTS = tuple(SourceBuild.__dataclass_fields__)


class SourceImageProvider(dynamic.ResourceProvider):
    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        spec = SourceBuild(**{k: props[k] for k in INPUTS if k in props})
        built = CloudBuild().build(spec)
        return dynamic.CreateResult(built.build_id, {**asdict(spec), **asdict(built)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = [k for k in INPUTS if olds.get(k) != news.get(k)]
        return dynamic.DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=False)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """The image stays: a rollback may point at it again; the repository's cleanup policy ages it out."""


class SourceImage(dynamic.Resource, module="txguard", name="SourceImage"):
    """`image_ref` is `<repository path>@sha256:<digest>`, known only once Cloud Build has pushed it."""

    image_ref: pulumi.Output[str]
    digest: pulumi.Output[str]
    build_id: pulumi.Output[str]

    def __init__(self, name: str, spec: dict[str, pulumi.Input[str]],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        unknown = set(spec) - set(INPUTS)
        if unknown:
            raise KeyError(f"not a SourceBuild field: {sorted(unknown)}")
        super().__init__(SourceImageProvider(), name,
                         {**spec, "image_ref": None, "digest": None, "build_id": None, "log_url": None}, opts)
