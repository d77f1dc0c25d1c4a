"""txguard on Google Cloud: wires the components of this package and exports what callers need.

Run by `pulumi up` from the repository root (Pulumi.yaml: `main: infra/`). Configuration is read
once (infra/config.py); each concern is a ComponentResource in its own module.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Pulumi runs this file as a script: make `infra` and the runtime half of `txguard` (the contract:
# names, settings) importable. The program never imports tooling.
for _path in (ROOT / "shared", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import pulumi  # noqa: E402
import pulumi_gcp as gcp  # noqa: E402

from infra import config  # noqa: E402
from infra.archive import build_archive  # noqa: E402
from infra.console import AnalystConsole  # noqa: E402
from infra.functions import CloudFunction, FunctionSpec, enrich_environment, scoring_environment  # noqa: E402
from infra.history import HistoryDatabase  # noqa: E402
from infra.iam import AccessBindings, GrantTargets, Identities  # noqa: E402
from infra.messaging import Messaging  # noqa: E402
from infra.monitoring import Monitoring  # noqa: E402
from infra.services import ProjectServices  # noqa: E402
from infra.storage import Storage  # noqa: E402
from txguard.contract import names  # noqa: E402

BUILD_DIR = Path(os.environ.get("TXGUARD_BUILD_DIR", ROOT / "infra" / ".build"))

cfg = config.load()
apis = ProjectServices("apis", cfg)
storage = Storage("storage", cfg, depends_on=apis.services)
identities = Identities("identities", cfg, depends_on=apis.services)
history = HistoryDatabase("history", cfg, depends_on=apis.services)

function_deps = [*apis.services, history.database]
scoring = CloudFunction(
    "scoring", cfg,
    FunctionSpec(
        name=names.SCORING_FUNCTION,
        entry_point=names.SCORING_ENTRY_POINT,
        archive=build_archive("score", BUILD_DIR),
        capacity=cfg.scoring,
        service_account_email=identities.scoring.email,
        environment=scoring_environment(cfg),
        description="Scores transactions with the production model (HTTP, authenticated)",
    ),
    storage.sources, storage.images, identities.builder, depends_on=function_deps,
)
enrich = CloudFunction(
    "enrich", cfg,
    FunctionSpec(
        name=names.ENRICH_FUNCTION,
        entry_point=names.ENRICH_ENTRY_POINT,
        archive=build_archive("enrich", BUILD_DIR),
        capacity=cfg.enrich,
        service_account_email=identities.enrich.email,
        environment=enrich_environment(cfg, scoring.url),
        description="Validates, enriches and scores transactions pushed by Pub/Sub; publishes decisions",
        signature_type="cloudevent",
    ),
    storage.sources, storage.images, identities.builder, depends_on=function_deps,
)
messaging = Messaging(
    "messaging", cfg,
    push_endpoints={names.ENRICH_FUNCTION: enrich.url},
    push_service_account=identities.push.email,
    depends_on=apis.services,
)
project_number = gcp.organizations.get_project_output(project_id=cfg.project).number
AccessBindings(
    "access", cfg, identities,
    GrantTargets(
        models_bucket=storage.models,
        sources_bucket=storage.sources,
        images_repository=storage.images,
        topics=messaging.topics,
        subscriptions=messaging.subscriptions,
        scoring_service=scoring.service_name,
        enrich_service=enrich.service_name,
        project_number=project_number,
    ),
)
monitoring = Monitoring("monitoring", cfg, depends_on=apis.services)
# The analyst console (docs/console.md): only with a group to let in, never public.
console = AnalystConsole(
    "console", cfg, build_archive("console", BUILD_DIR), storage.sources, storage.images, identities.builder,
    scoring.service_name, scoring.url, messaging.topics, messaging.subscriptions, storage.models, project_number,
    depends_on=function_deps,
) if cfg.analysts_group else None

outputs = {
    "scoring_url": scoring.url,
    "enrich_url": enrich.url,
    "model_uri": cfg.model_uri,
    "models_bucket": storage.models.name,
    "sources_bucket": storage.sources.name,
    "topics": {key: topic.name for key, topic in messaging.topics.items()},
    "subscriptions": {key: sub.name for key, sub in messaging.subscriptions.items()},
    "service_accounts": {
        "scoring": identities.scoring.email,
        "enrich": identities.enrich.email,
        "push": identities.push.email,
        "publisher": identities.publisher.email,
        **({"build": identities.builder.email} if identities.builder is not None else {}),
        **({"console": console.account.email} if console is not None else {}),
    },
    "console_url": console.url if console is not None else None,
    "firestore_database": history.database.name,
    "dashboard": monitoring.dashboard.id,
}
for key, value in outputs.items():
    pulumi.export(key, value)
