"""Project APIs the stack needs, and the options that make every resource wait for them."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_gcp as gcp

from infra.config import StackConfig

APIS = (
    "artifactregistry.googleapis.com",
    "bigtable.googleapis.com",  # the counterparty store's data API (the functions)
    "bigtableadmin.googleapis.com",  # its instance, table and GC policies (this program)
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "compute.googleapis.com",  # Dataflow workers are Compute Engine VMs
    "dataflow.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iap.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
)


class ProjectServices(pulumi.ComponentResource):
    """Enables the APIs (never disables them on destroy: other workloads may share the project)."""

    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("txguard:infra:ProjectServices", name, None, opts)
        self.by_api: dict[str, pulumi.Resource] = {}
        if cfg.enable_apis:
            for api in APIS:
                self.by_api[api] = gcp.projects.Service(
                    api.split(".")[0],
                    project=cfg.project,
                    service=api,
                    disable_on_destroy=False,
                    opts=pulumi.ResourceOptions(parent=self),
                )
        self.services: list[pulumi.Resource] = list(self.by_api.values())
        self.register_outputs({"apis": [api for api in APIS if cfg.enable_apis]})

    def only(self, *apis: str) -> list[pulumi.Resource]:
        """The services of these APIs alone (nothing when the stack does not enable APIs).

        A resource that waits for exactly the API it calls can be created with `pulumi up --target`
        and its own URN plus these: a resource waiting for every API drags all of them in, and the
        engine refuses a targeted create whose dependencies are not targeted.
        """
        unknown = set(apis) - set(APIS)
        if unknown:
            raise KeyError(f"not an API of this stack: {sorted(unknown)}")
        return [self.by_api[api] for api in apis if api in self.by_api]


def child_options(parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
    """Options for a component's children: parented, and waiting for what the component waits for.

    Children do not inherit their component's `depends_on`, so it is passed down explicitly.
    """
    return pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on))
