"""`txguard local up`: the whole pipeline on one machine, then a summary of what came out.

Emulator mode (gcloud + Java present): the real Pub/Sub, Firestore, Bigtable and Cloud Storage
emulators, the topology from shared/txguard/contract/names.py, the counterparty table as infra
declares it, a model in `gs://txguard-models/registry`, the three functions (scoring, enrichment,
labels) under functions-framework (gunicorn). The transactions and labels push subscriptions
reach their functions through the push bridge (`push="bridge"`, txguard.local.bridge: pull with a
window of outstanding messages, the production push body, per-wallet order, ack/nack), or
through the emulator's own push (`push="emulator"`: two messages at a time, no ordering);
COUNTERPARTY_STORE=bigtable. Embedded mode (no gcloud, or --embedded): the same function
processes, Pub/Sub replaced by scripts/txguard/local/embedded.py (Publish over gRPC + push loops),
SQLite history and counterparty store, a local registry. In both, what the label function did
with each label is read from its log (txguard.local.logtail) into the stream's ledger.

Everything started here is registered on one ExitStack the moment it exists, and that stack is
closed on every way out (normal end, exception, Ctrl-C, SIGTERM): emulators and functions run in
their own process groups and are killed by group.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from txguard.contract import names
from txguard.local import emulators, model, processes, topology
from txguard.local.router import Router

# Default publishing rate per mode. The Pub/Sub emulator's own push delivers at most 2 messages at
# a time (measured), so at 50-80 ms per enrichment it sustains 25-40 tx/s. With the push bridge the
# functions and the Firestore emulator bound it: about 37 tx/s on a 2-core machine shared with
# other work (`txguard bench e2e`); the demo stays below that so its latency is not queueing.
DEFAULT_RATE = {"emulator": 25.0, "bridge": 25.0, "embedded": 50.0}
PUSH_MODES = ("bridge", "emulator")  # how the emulator's transactions subscription reaches enrichment


@dataclass
class StackOptions:
    count: int = 2000
    rate: float | None = None  # None: DEFAULT_RATE of the mode
    speed: float | None = None
    scenario: str = "burst"
    seed: int = 7
    drift: float | None = None
    invalid_fraction: float = 0.01
    embedded: bool = False
    keep: bool = False
    drain_timeout_s: float = 60.0
    project: str = "txguard-local"
    registry: str | None = None  # default: gs://txguard-models/registry (emulators) or <workdir>/registry
    workdir: Path | None = None
    enrich_threads: int = 8
    scoring_threads: int = 1
    # Sent first, on wallets of their own, and left out of the summary: the first Firestore
    # transactions, gRPC channels and model sessions are cold starts, not steady-state latency.
    warmup: int = 20
    # Hooks for `txguard reliability` (defaults keep `local up` as it was):
    # the emulator's push subscription without its retry policy (docs/reliability.md says why),
    # and no pull consumer on the dead-letter inspection subscription (a redrive pulls it instead).
    emulator_retry_policy: bool = True
    pull_dead_letter: bool = True
    # Emulator mode: the push bridge (production-like) or the emulator's own push; the bridge's
    # window of outstanding messages (production's push window is thousands).
    push: str = "bridge"
    push_window: int = 1000
    label_threads: int = 4
    # Settings of the label function beyond the stack's (LabelSettings aliases: its limits, its retry of
    # labels whose transaction is not in the index yet); `txguard reliability` sets them.
    label_env: dict[str, str] | None = None
    # Settings of the enrichment function beyond the stack's (`txguard bench e2e` counts its gRPC calls).
    enrich_env: dict[str, str] | None = None
    # The demo stream's labels (txguard.local.label_feed): seconds of demo per day of label delay; 0: none.
    label_day_s: float = 0.5
    # The analyst console (docs/console.md) served next to the stack; `local up` turns it on.
    analyst_console: bool = False
    console_port: int = 0


def emulator_mode_available() -> bool:
    return emulators.gcloud_available() and emulators.fake_gcs_binary() is not None


class LocalStack:
    def __init__(self, options: StackOptions, terminal: Any) -> None:
        self.options = options
        self.terminal = terminal
        self.mode = "embedded" if options.embedded or not emulator_mode_available() else "emulators"
        self.workdir = options.workdir or Path(tempfile.mkdtemp(prefix="txguard-local-"))
        self.rate = options.rate if options.rate is not None or options.speed else DEFAULT_RATE[self.push_mode]
        self.ledgers = Router()  # every output of the pipeline goes to the ledger of its stream
        self.env: dict[str, str] = {}  # what a second shell needs to talk to this stack
        self.endpoints: dict[str, str] = {}
        self.model: dict[str, Any] = {}
        self.rules: dict[str, Any] = {}
        self.broker: Any = None
        self.pusher: Any = None  # embedded mode's push loop
        self.bridge: Any = None  # emulator mode's push bridge
        # One per label route (txguard.contract.names.LABEL_ROUTES): its push subscription's bridge, or
        # embedded pusher, posting to the route's own path of the label function.
        self.label_deliveries: dict[str, Any] = {}
        self.consumers: Any = None
        self.emulators: dict[str, emulators.Emulator] = {}  # by name: pubsub, firestore, gcs
        self.functions: dict[str, processes.FunctionProcess] = {}  # score, enrich, label
        self.analyst_console: Any = None  # txguard.local.console.LocalConsole when started
        self._echo = False  # --keep: print decisions as they arrive (embedded mode)
        self._exit = contextlib.ExitStack()
        self._t0 = time.monotonic()

    # lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        saved = dict(os.environ)
        self._exit.callback(lambda: (os.environ.clear(), os.environ.update(saved)))
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._exit.close()

    def on_close(self, callback: Any) -> None:
        """Run `callback` when the stack closes (something started after `up`, stopped with it)."""
        self._exit.callback(callback)

    def step(self, text: str) -> None:
        self.terminal.print(f"[dim]{time.monotonic() - self._t0:6.1f}s[/] {text}")

    def _setenv(self, key: str, value: str) -> None:
        os.environ[key] = value
        self.env[key] = value

    def up(self) -> LocalStack:
        self.step(f"[bold]{self.mode}[/] mode, work folder {self.workdir}")
        self._setenv("GOOGLE_CLOUD_PROJECT", self.options.project)
        self.env["HISTORY_STORE"] = "firestore" if self.mode == "emulators" else "sqlite"
        if self.mode == "embedded":
            self.env["SQLITE_PATH"] = str(self.workdir / "history.sqlite3")
        if self.mode == "emulators":
            self._up_emulators()
        else:
            self._up_embedded()
        return self

    def _start_emulators(self) -> dict[str, emulators.Emulator]:
        started: dict[str, emulators.Emulator] = {}
        lock = threading.Lock()

        def start(name: str, fn: Any) -> None:
            emu = fn()
            with lock:
                started[name] = emu

        def stop_all() -> None:
            for emu in started.values():
                emu.stop()

        self._exit.callback(stop_all)
        project, wd = self.options.project, self.workdir
        with ThreadPoolExecutor(4) as pool:  # JVM start-ups overlap; all finish before we go on
            jobs = [pool.submit(start, "pubsub", lambda: emulators.start_pubsub(project, wd)),
                    pool.submit(start, "firestore", lambda: emulators.start_firestore(project, wd)),
                    pool.submit(start, "bigtable", lambda: emulators.start_bigtable(wd)),
                    pool.submit(start, "gcs", lambda: emulators.start_gcs(wd))]
            for job in jobs:
                job.result()
        return started

    def _up_emulators(self) -> None:
        emus = self.emulators = self._start_emulators()
        for emu in emus.values():
            self._setenv(emu.env_var, emu.env_value)
            self.endpoints[f"{emu.name} emulator"] = emu.host
        self.step("emulators up: " + ", ".join(f"{e.name} {e.host}" for e in emus.values()))
        registry = self.options.registry or model.GCS_REGISTRY
        if registry.startswith("gs://"):
            model.ensure_bucket(registry.removeprefix("gs://").split("/", 1)[0])
        self._ensure_model(registry)
        from txguard.local.bigtable import ensure_tables

        ensure_tables(self.options.project)
        common = {"GOOGLE_CLOUD_PROJECT": self.options.project}
        counterparty = {"COUNTERPARTY_STORE": "bigtable", "BIGTABLE_EMULATOR_HOST": emus["bigtable"].env_value,
                        "PUBSUB_EMULATOR_HOST": emus["pubsub"].env_value}
        score, enrich, label = self._start_functions(
            {**common, "MODEL_URI": f"{registry}@production", "STORAGE_EMULATOR_HOST": emus["gcs"].env_value},
            {**common, **counterparty, "HISTORY_STORE": "firestore",
             "FIRESTORE_EMULATOR_HOST": emus["firestore"].env_value, **(self.options.enrich_env or {})},
            {**common, **counterparty, **(self.options.label_env or {})},
        )
        # The console's subscriptions only when the console reads them (else they would only fill up).
        subscriptions = names.SUBSCRIPTIONS if self.options.analyst_console else tuple(
            s for s in names.SUBSCRIPTIONS if s.name not in names.CONSOLE_SUBSCRIPTIONS)
        if self.options.push == "bridge":
            from txguard.local.bridge import PushBridge

            # Production's settings; the bridge applies the retry policy itself, so the emulator's
            # subscriptions carry none (txguard.local.topology says why).
            topology.ensure_topology(self.options.project, subscriptions=subscriptions, push=False)
            spec = names.subscription(names.ENRICH_PUSH_SUBSCRIPTION)
            self.bridge = PushBridge(self.options.project, spec, enrich.url + "/",
                                     window=self.options.push_window).start()
            self._exit.callback(self.bridge.stop)
            for route in names.LABEL_ROUTES:
                label_spec = names.subscription(route.subscription)
                bridge = PushBridge(self.options.project, label_spec, topology.push_endpoint(label.url, label_spec),
                                    window=self.options.push_window).start()
                self.label_deliveries[route.name] = bridge
                self._exit.callback(bridge.stop)
            self.step(f"topology created; push bridges {spec.name} -> {enrich.url}/ (window "
                      f"{self.options.push_window}, {'ordered by wallet' if self.bridge.ordering else 'unordered'}), "
                      + ", ".join(f"{r.subscription} -> {label.url}{r.path}" for r in names.LABEL_ROUTES))
        elif self.options.push == "emulator":
            topology.ensure_topology(self.options.project, {names.ENRICH_FUNCTION: enrich.url + "/",
                                                            names.LABEL_FUNCTION: label.url + "/"},
                                     subscriptions=subscriptions, retry_policy=self.options.emulator_retry_policy)
            self.step(f"topology created; the emulator pushes {names.ENRICH_PUSH_SUBSCRIPTION} to {enrich.url}/ and "
                      + ", ".join(f"{r.subscription} to {label.url}{r.path}" for r in names.LABEL_ROUTES)
                      + " (2 at a time, unordered)")
        else:
            raise ValueError(f"push must be one of {PUSH_MODES}, got {self.options.push!r}")
        from txguard.local.consumers import PullConsumers

        self.consumers = PullConsumers(self.options.project, self.ledgers,
                                       dead_letter=self.options.pull_dead_letter).start()
        self._exit.callback(self._stop_consumers)
        self._start_console()

    def _stop_consumers(self) -> None:
        if self.consumers is not None:
            self.consumers.stop()
            self.consumers = None

    def _up_embedded(self) -> None:
        from txguard.local.embedded import EmbeddedPubSub, Message, Pusher

        def route(sink: Any) -> Any:
            return lambda m: sink(m.data, m.attributes, int(time.time() * 1000))

        def to_enrich(message: Message) -> None:
            self.pusher.submit(message)

        def to_label(route: str) -> Any:
            return lambda message: self.label_deliveries[route].submit(message)

        self.broker = EmbeddedPubSub(self.options.project, {
            names.TRANSACTIONS_TOPIC: to_enrich,
            names.DECISIONS_TOPIC: self._also_console(route(self._on_decision), names.DECISIONS_CONSOLE_SUBSCRIPTION),
            names.INVALID_TOPIC: self._also_console(route(self.ledgers.on_invalid), names.INVALID_CONSOLE_SUBSCRIPTION),
            names.DEAD_LETTER_TOPIC: self._also_console(route(self.ledgers.on_dead_letter),
                                                        names.DEAD_LETTER_CONSOLE_SUBSCRIPTION),
            **{route.topic: to_label(route.name) for route in names.LABEL_ROUTES},
            names.LABELS_DEAD_LETTER_TOPIC: route(self.ledgers.on_label_dead_letter),
        }, pulls={names.DECISIONS_SUBSCRIPTION: names.DECISIONS_TOPIC}).start()
        self._exit.callback(self.broker.stop)
        self._setenv("PUBSUB_EMULATOR_HOST", self.broker.host)
        self.endpoints[f"embedded Pub/Sub (Publish; Pull of {names.DECISIONS_SUBSCRIPTION})"] = self.broker.host
        self.step(f"embedded Pub/Sub on {self.broker.host}")
        registry = self.options.registry or str(self.workdir / "registry")
        self._ensure_model(registry)
        common = {"GOOGLE_CLOUD_PROJECT": self.options.project}
        # One SQLite file for the history and counterparty stores of both functions (WAL, busy timeout).
        sqlite = {"COUNTERPARTY_STORE": "sqlite", "SQLITE_PATH": str(self.workdir / "history.sqlite3"),
                  "PUBSUB_EMULATOR_HOST": self.broker.host}
        _, enrich, label = self._start_functions(
            {**common, "MODEL_URI": f"{registry}@production"},
            {**common, **sqlite, "HISTORY_STORE": "sqlite", **(self.options.enrich_env or {})},
            {**common, **sqlite, **(self.options.label_env or {})},
        )
        spec = names.subscription(names.ENRICH_PUSH_SUBSCRIPTION)
        self.pusher = Pusher(enrich.url + "/", self.options.project, spec,
                             lambda m, _n: self.broker.publish(names.DEAD_LETTER_TOPIC, m.data, m.attributes),
                             concurrency=self.options.enrich_threads)
        self._exit.callback(self.pusher.stop)
        for route in names.LABEL_ROUTES:
            label_spec = names.subscription(route.subscription)
            pusher = Pusher(
                topology.push_endpoint(label.url, label_spec), self.options.project, label_spec,
                lambda m, _n: self.broker.publish(names.LABELS_DEAD_LETTER_TOPIC, m.data, m.attributes),
                concurrency=self.options.label_threads)
            self.label_deliveries[route.name] = pusher
            self._exit.callback(pusher.stop)
        self.step(f"push loops: {spec.name} -> {enrich.url}/, "
                  + ", ".join(f"{r.subscription} -> {label.url}{r.path}" for r in names.LABEL_ROUTES)
                  + f" (max {spec.max_delivery_attempts} attempts)")
        self._start_console()

    def _also_console(self, handler: Any, subscription: str) -> Any:
        """Embedded mode: a topic's handler, plus a copy to the console as its `subscription` would."""
        def both(message: Any) -> None:
            handler(message)
            if self.analyst_console is not None:
                self.analyst_console.deliver(subscription, message)
        return both

    def _start_console(self) -> None:
        if not self.options.analyst_console:
            return
        from txguard.local.console import start_console

        self.analyst_console = start_console(self, self.options.console_port)
        self.on_close(self.analyst_console.stop)
        self.endpoints["analyst console"] = self.analyst_console.url
        self.step(f"[bold]analyst console {self.analyst_console.url}[/]")

    def _on_decision(self, data: bytes, attributes: dict[str, str], now_ms: int) -> None:
        self.ledgers.on_decision(data, attributes, now_ms)
        if self._echo:
            from txguard.local.report import format_decision

            self.terminal.print(format_decision(data, attributes), highlight=False)

    def _ensure_model(self, registry: str) -> None:
        self.step(f"model registry {registry}")
        self.env.update({"TXGUARD_REGISTRY": registry, "MODEL_URI": f"{registry}@production"})
        self.model = model.ensure_model(registry, log=lambda m: self.step(f"  train: {m}"))
        trained = f"trained in {self.model.get('train_seconds')} s, PR-AUC {self.model.get('pr_auc')}"
        self.step(f"model {self.model['version']} is production ({trained if self.model['trained'] else 'found'})")
        self.rules = model.ensure_rules(registry, log=lambda m: self.step(f"  rules: {m}"))
        self.step(f"rule set {self.rules['version']} is production ({'saved' if self.rules['saved'] else 'found'})")

    def _start_functions(self, score_env: dict[str, str], enrich_env: dict[str, str],
                         label_env: dict[str, str]) -> tuple[Any, Any, Any]:
        from txguard.local.logtail import LogTail

        score = processes.scoring_process(self.workdir, score_env, threads=self.options.scoring_threads)
        enrich_env = {**enrich_env, "SCORING_URL": score.url, "SCORING_AUTH": "none"}
        enrich = processes.enrich_process(self.workdir, enrich_env, threads=self.options.enrich_threads)
        label = processes.label_process(self.workdir, label_env, threads=self.options.label_threads)
        self.functions.update(score=score, enrich=enrich, label=label)
        for fn in (score, enrich, label):
            self._exit.callback(fn.stop)
            fn.spawn()
        score.wait_ready("/health", ready_ok=(200,))
        enrich.wait_ready("/")
        label.wait_ready("/")
        # What the label function did with each label id, from its one log line per delivery.
        tail = LogTail(label.log_path, self._on_label_line).start()
        self._setenv("TXGUARD_LABEL_LOG", str(label.log_path))  # `txguard label --wait` in another shell
        self._exit.callback(tail.stop)
        self.endpoints.update({"scoring function": score.url, "enrichment function": enrich.url,
                               "label function": label.url})
        self._setenv("SCORING_URL", score.url)
        self.step(f"functions up: scoring {score.url} (THREADS={self.options.scoring_threads}), "
                  f"enrichment {enrich.url}, labels {label.url}; logs in {self.workdir}")
        return score, enrich, label

    def _on_label_line(self, entry: dict[str, Any]) -> None:
        if entry.get("label_id") and entry.get("status"):
            self.ledgers.on_label_status(str(entry["label_id"]), str(entry["status"]))

    # the stream ------------------------------------------------------------------------------
    @property
    def dispatcher(self) -> Any:
        """What posts the pushes (the bridge's or the embedded pusher's); None with the emulator's own push."""
        delivery = self.bridge or self.pusher
        return None if delivery is None else delivery.dispatcher

    def history_store(self) -> Any:
        """A client of the stack's history store (the functions' Firestore or SQLite), to read it back."""
        if self.mode == "embedded":
            from txguard.enrichment.history.sqlite import SqliteHistoryStore

            return SqliteHistoryStore(self.workdir / "history.sqlite3")
        from txguard.enrichment.history.firestore import FirestoreHistoryStore

        return FirestoreHistoryStore(project=self.options.project)

    def counterparty_store(self) -> Any:
        """A client of the stack's counterparty store (the functions' Bigtable table or SQLite file)."""
        if self.mode == "embedded":
            from txguard.enrichment.counterparty.sqlite import SqliteCounterpartyStore

            return SqliteCounterpartyStore(str(self.workdir / "history.sqlite3"))
        from txguard.enrichment.counterparty.bigtable import BigtableCounterpartyStore

        return BigtableCounterpartyStore(project=self.options.project)

    def label_stores(self) -> tuple[Any, Any, Any]:
        """Clients of the label function's stores (counterparty, transaction index, label review), as its
        settings name them: what `txguard labels held` opens (close each)."""
        from txguard.enrichment.label_review import create_label_review
        from txguard.enrichment.transaction_index import create_transaction_index

        store = self.counterparty_store()
        if self.mode == "embedded":
            from txguard.contract.settings import CounterpartySettings

            settings = CounterpartySettings.model_validate(
                {"COUNTERPARTY_STORE": "sqlite", "SQLITE_PATH": str(self.workdir / "history.sqlite3"),
                 "GOOGLE_CLOUD_PROJECT": self.options.project})
            return store, create_transaction_index(settings), create_label_review(settings)
        from txguard.contract.settings import CounterpartySettings

        settings = CounterpartySettings.model_validate({"COUNTERPARTY_STORE": "bigtable",
                                                        "GOOGLE_CLOUD_PROJECT": self.options.project})
        return store, create_transaction_index(settings), create_label_review(settings)

    @property
    def push_mode(self) -> str:
        return "embedded" if self.mode == "embedded" else self.options.push

    def delivery_summary(self) -> dict[str, Any]:
        """How transactions reached the enrichment function (a summary's fields)."""
        out: dict[str, Any] = {"push_mode": self.push_mode}
        if self.bridge is not None:
            out["push"] = self.bridge.summary()
        elif self.pusher is not None:
            out["push"] = {**self.pusher.stats.as_dict(), "dead_lettered": self.pusher.dead_lettered}
        out["ordering"] = self.dispatcher is not None and self.dispatcher.ordering
        for route, labels in self.label_deliveries.items():
            out.setdefault("labels_push", {})[route] = (
                labels.summary() if hasattr(labels, "summary")
                else {**labels.stats.as_dict(), "dead_lettered": labels.dead_lettered})
        return out

    def print_env(self) -> None:
        self.terminal.print("[bold]endpoints[/]")
        for name, url in self.endpoints.items():
            self.terminal.print(f"  {name:32} {url}")
        self.terminal.print("[bold]environment for another shell[/]")
        for key, value in self.env.items():
            self.terminal.print(f"  export {key}={value}", highlight=False)

    def keep_running(self) -> None:
        """--keep: leave everything up for other shells until Ctrl-C / SIGTERM."""
        self._stop_consumers()  # `txguard decisions --follow` in another shell gets the decisions now
        self._echo = self.mode == "embedded"  # embedded outputs only exist in this process: show them
        self.print_env()
        self.terminal.print("[bold]stack running[/]; Ctrl-C to stop" + (
            f" (decisions are printed here too; `txguard decisions --follow` pulls {names.DECISIONS_SUBSCRIPTION})"
            if self._echo else ""))
        stop = threading.Event()
        while not stop.wait(1.0):
            pass
