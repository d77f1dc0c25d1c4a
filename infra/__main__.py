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
from infra.batch import BatchResources  # noqa: E402
from infra.console import AnalystConsole  # noqa: E402
from infra.counterparty import CounterpartyStore  # noqa: E402
from infra.functions import (  # noqa: E402
    CloudFunction,
    FunctionSpec,
    enrich_environment,
    label_environment,
    scoring_environment,
)
from infra.history import HistoryDatabase  # noqa: E402
from infra.iam import AccessBindings, Identities  # noqa: E402
from infra.messaging import Messaging  # noqa: E402
from infra.monitoring import Monitoring  # noqa: E402
from infra.services import ProjectServices  # noqa: E402
from infra.storage import Storage  # noqa: E402
from txguard.contract import names  # noqa: E402

BUILD_DIR = Path(os.environ.get("TXGUARD_BUILD_DIR", ROOT / "infra" / ".build"))

cfg = config.load()
apis = ProjectServices("apis", cfg)
storage = Storage("storage", cfg, apis)
identities = Identities("identities", cfg, depends_on=apis.services)
history = HistoryDatabase("history", cfg, depends_on=apis.services)
counterparty = CounterpartyStore("counterparty", cfg, depends_on=apis.services)
messaging = Messaging("messaging", cfg, depends_on=apis.services)  # topics; subscriptions come last
project_number = gcp.organizations.get_project_output(project_id=cfg.project).number
# Grants are declared before the resource that relies on it, which waits for them to settle (iam.py).
access = AccessBindings("access", cfg, identities, depends_on=apis.only("pubsub.googleapis.com"))
builds_ready = access.settled("build-grants-settle", access.build(storage.sources, storage.images))

function_deps = [*apis.services, history.database, *builds_ready]
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
    storage.sources, storage.images, identities.builder,
    depends_on=[*function_deps, *access.settled("scoring-grants-settle", access.scoring_runtime(storage.models))],
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
    storage.sources, storage.images, identities.builder,
    depends_on=[*function_deps, *access.settled(
        "enrich-grants-settle", access.enrich_runtime(messaging.topics, scoring.service_name, counterparty.table,
                                                      counterparty.index_table))],
)
label = CloudFunction(
    "label", cfg,
    FunctionSpec(
        name=names.LABEL_FUNCTION,
        entry_point=names.LABEL_ENTRY_POINT,
        archive=build_archive("label", BUILD_DIR),
        capacity=cfg.label,
        service_account_email=identities.label.email,
        environment=label_environment(cfg),
        description="Applies label events (chargebacks, analyst verdicts, reversals) pushed by Pub/Sub "
        "to the counterparty aggregates",
        signature_type="cloudevent",
    ),
    storage.sources, storage.images, identities.builder,
    depends_on=[*function_deps, *access.settled(
        "label-grants-settle", access.label_runtime(messaging.topics, counterparty.table,
                                                    counterparty.index_table))],
)
push_grants = access.push_delivery({names.ENRICH_FUNCTION: enrich.service_name,
                                    names.LABEL_FUNCTION: label.service_name})
messaging.subscribe(
    push_endpoints={names.ENRICH_FUNCTION: enrich.url, names.LABEL_FUNCTION: label.url},
    push_service_account=identities.push.email,
    push_ready={function: access.settled(f"push-{function}-grants-settle", grants)
                for function, grants in push_grants.items()},
)
access.dead_lettering(messaging.topics, messaging.subscriptions)
access.publishers(messaging.topics)
access.done()
monitoring = Monitoring("monitoring", cfg, depends_on=apis.services)
# The analyst console (docs/console.md): only with a group to let in, never public.
console = AnalystConsole(
    "console", cfg, build_archive("console", BUILD_DIR), storage.sources, storage.images, identities.builder,
    scoring.service_name, scoring.url, messaging.topics, messaging.subscriptions, storage.models, history.database,
    counterparty.table, project_number, builds_ready=builds_ready, depends_on=[*apis.services, history.database],
) if cfg.analysts_group else None
batch = BatchResources("batch", cfg, storage.models, depends_on=apis.services)

outputs = {
    "scoring_url": scoring.url,
    "enrich_url": enrich.url,
    "label_url": label.url,
    "model_uri": cfg.model_uri,
    "models_bucket": storage.models.name,
    "sources_bucket": storage.sources.name,
    "topics": {key: topic.name for key, topic in messaging.topics.items()},
    "subscriptions": {key: sub.name for key, sub in messaging.subscriptions.items()},
    "service_accounts": {
        "scoring": identities.scoring.email,
        "enrich": identities.enrich.email,
        "label": identities.label.email,
        "push": identities.push.email,
        "publisher": identities.publisher.email,
        "chargebacks": identities.chargebacks.email,
        "batch": batch.worker.email,
        **({"build": identities.builder.email} if identities.builder is not None else {}),
        **({"console": console.account.email} if console is not None else {}),
    },
    "console_url": console.url if console is not None else None,
    "console_image": console.image.image_ref if console is not None else None,
    "batch_bucket": batch.bucket.name,
    "batch_staging_location": batch.staging_location,
    "batch_temp_location": batch.temp_location,
    "firestore_database": history.database.name,
    "bigtable_instance": counterparty.instance.name,
    "counterparty_table": counterparty.table.name,
    "transaction_index_table": counterparty.index_table.name,
    "dashboard": monitoring.dashboard.id,
}
for key, value in outputs.items():
    pulumi.export(key, value)
