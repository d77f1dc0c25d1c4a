"""Run the Pulumi program under `pulumi.runtime.set_mocks` and record what it declares.

No CLI, no cloud: the mock monitor answers every resource registration with the inputs it was
given plus the few computed outputs the program reads (emails, ids, URLs), and every invoke
(`gcp.organizations.getProject`) with a fixed project number. The monitor also records each
registration's dependencies (explicit `depends_on`, expanded through components, and the ones
implied by inputs), so tests can assert the order a real `pulumi up` would create things in.
"""

from __future__ import annotations

import hashlib
import os
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "infra" / "__main__.py"
PROJECT_NUMBER = "123456789012"
# The dev stack as tests declare it, and overrides of every tunable the tests check.
BASE_CONFIG = {"gcp:project": "txguard-dev", "gcp:region": "europe-west1"}
OVERRIDES = {
    "txguard:scoringConcurrency": "4",
    "txguard:scoringMinInstances": "3",
    "txguard:scoringMaxInstances": "40",
    "txguard:scoringCpu": "4",
    "txguard:scoringMemory": "4Gi",
    "txguard:scoringWorkers": "4",
    "txguard:enrichConcurrency": "25",
    "txguard:enrichMinInstances": "1",
    "txguard:enrichMaxInstances": "12",
    "txguard:enrichCpu": "1",
    "txguard:enrichMemory": "1Gi",
    "txguard:maxDeliveryAttempts": "7",
    "txguard:minBackoffSeconds": "5",
    "txguard:maxBackoffSeconds": "300",
    "txguard:modelUri": "gs://elsewhere/registry@v3",
    "txguard:modelRollout": "2025-01-01T00:00:00Z",
    "txguard:buildServiceAccount": "false",
    "txguard:alertEmails": '["oncall@example.com"]',
    "txguard:modelPollSeconds": "5",
    "txguard:shadowEnabled": "true",
    "txguard:shadowSampleRate": "0.25",
    "txguard:driftWindowSeconds": "600",
    "txguard:driftPsiThreshold": "0.3",
    "txguard:driftAlertMinutes": "60",
    "txguard:latencySlaMs": "80",
    "txguard:enrichLatencySlaMs": "400",
    "txguard:oldestUnackedAgeSeconds": "120",
    "txguard:invalidShare": "0.02",
    "txguard:deadLetterShare": "0.005",
    "txguard:blockedShare": "0.2",
    "txguard:batchTempRetentionDays": "3",
    "txguard:batchLaunchers": '["group:fraud-analysts@example.com"]',
    "txguard:labelConcurrency": "20",
    "txguard:labelMaxInstances": "5",
    "txguard:bigtableZone": "europe-west1-c",
    "txguard:bigtableStorageType": "HDD",
    "txguard:bigtableMinNodes": "3",
    "txguard:bigtableMaxNodes": "10",
    "txguard:bigtableCpuTarget": "50",
    "txguard:counterpartyShards": "8",
}
PUBSUB_AGENT = f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
IAP_AGENT = f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-iap.iam.gserviceaccount.com"
SOURCE_IMAGE = "pulumi-python:dynamic/txguard:SourceImage"  # infra/image_build.py


@dataclass(frozen=True)
class Declared:
    typ: str
    name: str
    inputs: dict[str, Any]


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, project: str) -> None:
        self.project = project
        self.resources: list[Declared] = []
        self.calls: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.resources.append(Declared(args.typ, args.name, dict(args.inputs)))
        inputs = dict(args.inputs)
        project = inputs.get("project", self.project)
        rid = f"{args.name}_id"
        if args.typ == "gcp:serviceaccount/account:Account":
            email = f"{inputs['accountId']}@{project}.iam.gserviceaccount.com"
            rid = f"projects/{project}/serviceAccounts/{email}"
            inputs |= {"email": email, "name": rid}
        elif args.typ == "gcp:pubsub/topic:Topic":
            rid = f"projects/{project}/topics/{inputs['name']}"
        elif args.typ == "gcp:pubsub/subscription:Subscription":
            rid = f"projects/{project}/subscriptions/{inputs['name']}"
        elif args.typ == "gcp:artifactregistry/repository:Repository":
            rid = f"projects/{project}/locations/{inputs['location']}/repositories/{inputs['repositoryId']}"
            inputs |= {"name": inputs["repositoryId"]}
        elif args.typ == "gcp:cloudfunctionsv2/function:Function":
            rid = f"projects/{project}/locations/{inputs['location']}/functions/{inputs['name']}"
            inputs |= {"url": f"https://{inputs['location']}-{project}.cloudfunctions.net/{inputs['name']}"}
            run_uri = f"https://{inputs['name']}-{PROJECT_NUMBER}.{inputs['location']}.run.app"
            inputs["serviceConfig"] = {**inputs["serviceConfig"], "uri": run_uri}
        elif args.typ == "gcp:cloudrunv2/service:Service":
            rid = f"projects/{project}/locations/{inputs['location']}/services/{inputs['name']}"
            inputs |= {"uri": f"https://{inputs['name']}-{PROJECT_NUMBER}.{inputs['location']}.run.app"}
        elif args.typ == "gcp:monitoring/dashboard:Dashboard":
            rid = f"projects/{PROJECT_NUMBER}/dashboards/{args.name}"
        elif args.typ == "gcp:projects/serviceIdentity:ServiceIdentity":
            # What the API answers: the agent of that service, named by the project number.
            agent = inputs["service"].split(".")[0]
            inputs |= {"email": f"service-{PROJECT_NUMBER}@gcp-sa-{agent}.iam.gserviceaccount.com"}
            inputs["member"] = f"serviceAccount:{inputs['email']}"
        elif args.typ == "gcp:logging/projectBucketConfig:ProjectBucketConfig":
            rid = f"projects/{project}/locations/{inputs['location']}/buckets/{inputs['bucketId']}"
        elif args.typ == "gcp:logging/logView:LogView":
            parent, _, rest = inputs["bucket"].partition("/locations/")
            location, _, bucket = rest.partition("/buckets/")
            inputs |= {"parent": parent, "location": location, "bucket": bucket}
            rid = f"{parent}/locations/{location}/buckets/{bucket}/views/{inputs['name']}"
        elif args.typ == SOURCE_IMAGE:
            # A build's result: the pushed image, by the digest Cloud Build records (here a hash of its source).
            digest = "sha256:" + hashlib.sha256(f"{inputs['bucket']}/{inputs['object']}".encode()).hexdigest()
            rid = f"build-{args.name}"
            inputs |= {"digest": digest, "image_ref": f"{inputs['image']}@{digest}", "build_id": rid}
        return rid, inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        self.calls.append(args.token)
        if args.token == "gcp:organizations/getProject:getProject":
            return {"number": PROJECT_NUMBER, "projectId": args.args.get("projectId", self.project)}
        return {}


class RecordingMonitor(MockMonitor):
    """The mock monitor, keeping what each resource waits for (URN -> URNs of its dependencies)."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.dependencies: dict[str, set[str]] = {}
        self.parents: dict[str, str] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)
        self.dependencies[response.urn] = set(request.dependencies)
        if request.parent:
            self.parents[response.urn] = request.parent
        return response


@dataclass
class StackRun:
    config: dict[str, str]
    resources: list[Declared]
    outputs: dict[str, Any] = field(default_factory=dict)
    urns: list[str] = field(default_factory=list)
    dependencies: dict[str, set[str]] = field(default_factory=dict)
    parents: dict[str, str] = field(default_factory=dict)  # URN -> its parent's URN (components)

    def urn(self, typ: str, name: str) -> str:
        """The URN of the resource of this type and name (the tail of its qualified type)."""
        found = [u for u in self.urns if u.endswith(f"{typ}::{name}") and (u.split("::")[2].split("$")[-1] == typ)]
        assert len(found) == 1, f"expected one {typ} named {name}, found {found}"
        return found[0]

    def waits_for(self, typ: str, name: str) -> set[str]:
        """URNs this resource directly depends on."""
        return self.dependencies[self.urn(typ, name)]

    def depends(self, user: tuple[str, str], needed: tuple[str, str]) -> bool:
        """Does `user` (type, name) wait for `needed`, directly or through other resources?"""
        target, seen, todo = self.urn(*needed), set(), [self.urn(*user)]
        while todo:
            current = todo.pop()
            for dep in self.dependencies.get(current, ()):
                if dep == target:
                    return True
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return False

    def of_type(self, typ: str) -> list[Declared]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, **match: Any) -> Declared:
        found = [r for r in self.of_type(typ) if all(r.inputs.get(k) == v for k, v in match.items())]
        assert len(found) == 1, f"expected one {typ} with {match}, found {len(found)}"
        return found[0]


def run_program(config: dict[str, str], build_dir: Path, stack: str = "dev") -> StackRun:
    """Execute infra/__main__.py against mocks with `config` as the stack config."""
    project = config.get("gcp:project", "txguard-dev")
    mocks = RecordingMocks(project)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="txguard", stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config))
    run = StackRun(config=dict(config), resources=mocks.resources)
    previous = os.environ.get("TXGUARD_BUILD_DIR")
    os.environ["TXGUARD_BUILD_DIR"] = str(build_dir)

    @pulumi.runtime.test
    def program() -> pulumi.Output:
        program_globals = runpy.run_path(str(MAIN), run_name="__main__")
        return pulumi.Output.from_input(program_globals["outputs"]).apply(run.outputs.update)

    try:
        program()
        run.urns.extend(monitor.get_registered_resources())
        run.dependencies.update(monitor.dependencies)
        run.parents.update(monitor.parents)
    finally:
        if previous is None:
            os.environ.pop("TXGUARD_BUILD_DIR", None)
        else:
            os.environ["TXGUARD_BUILD_DIR"] = previous
    return run
