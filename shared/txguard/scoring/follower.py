"""Follow the registry aliases: a promote or rollback reaches the running instance without a redeploy.

One daemon thread per process (each gunicorn worker follows on its own: threads do not survive
the fork, so the service starts this one in every worker, see ScoringService.start_background).
Every `MODEL_POLL_S` seconds it makes one conditional read of the alias object (Cloud Storage
`ifGenerationNotMatch`: HTTP 304 and no body while nothing changed; docs/lifecycle.md has the
measurements and why not a Pub/Sub notification). When the alias moved it loads the new version
here, in the background, through every check of txguard.scoring.loading, and only then swaps the
champion of the `ServingState` it shares with the routes: one reference assignment, so a request
runs entirely on the old or entirely on the new version, and its decision names the one that made it.

- A version that fails a check is refused (one ERROR line, `event: model_refused`); the previous
  one keeps answering, and the refused one is not retried until the alias moves again.
- A registry that cannot be reached is retried at the next poll (the alias is not marked seen).
- An instance without any model (its cold start failed) retries with backoff, 1 s doubling up to
  `RETRY_CAP_S`, for as long as it lives: it never stays 503 after the registry is healthy again.
- With shadow scoring on, the challenger alias (`staging`) is followed the same way.
- The rule set aliases (`RULES_ALIAS`, default `production`, and `staging` for the rules' shadow)
  are followed the same way, in the same round (docs/rules.md): conditional read, load (checksum,
  every rule checked and compiled again), swap; a rule set that fails is refused (`event:
  rules_refused`) and the previous one stays; no rule set alias yet means no rules.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from txguard.contract.errors import RuleSetNotFoundError
from txguard.contract.logs import (
    EVENT_KEY,
    MODEL_LOADED_EVENT,
    MODEL_REFUSED_EVENT,
    RULES_LOADED_EVENT,
    RULES_REFUSED_EVENT,
    get_logger,
)
from txguard.contract.settings import ScoringSettings
from txguard.registry import Registry
from txguard.registry.rulesets import RuleSetRegistry
from txguard.registry.store import Generation
from txguard.rules.engine import RuleSet
from txguard.scoring.loading import is_alias, is_transient, load_rules, load_scorer, resolve, rule_sets
from txguard.scoring.scorer import Scorer
from txguard.scoring.state import CHALLENGER, CHAMPION, ServingState

RETRY_CAP_S = 30.0


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Followed:
    """One alias (or fixed reference) and what this process made of it."""

    ref: str
    role: str  # CHAMPION (answers) or CHALLENGER (shadow)
    generation: Generation | None = None  # of the alias object last acted upon


class ModelFollower:
    def __init__(self, state: ServingState, settings: ScoringSettings, registry: Registry, ref: str,
                 challenger_ref: str | None = None, rules_refs: tuple[tuple[str, str], ...] = ()) -> None:
        self.state, self.registry = state, registry
        self.rulesets: RuleSetRegistry = rule_sets(registry)
        self.rules = [Followed(ref, role) for role, ref in rules_refs]  # (RULES or STAGING_RULES, alias)
        self.poll_s, self.threads, self.model_uri = settings.model_poll_s, settings.inference_threads, settings.model_uri
        self.champion = Followed(ref, CHAMPION)
        self.challenger = Followed(challenger_ref, CHALLENGER) if challenger_ref else None
        self.log = get_logger("score", settings.log_level)
        self.failures = 0  # consecutive failed attempts to get a first model
        self.last_check: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # One round --------------------------------------------------------------------------------
    def check(self) -> float:
        """Poll (or retry) once; returns how long to wait before the next round."""
        self.last_check = time.time()
        if self.state.champion is None:
            return self._first_model()
        self._follow(self.champion)
        if self.challenger is not None:
            self._follow(self.challenger)
        for followed in self.rules:
            self._follow_rules(followed)
        return self.poll_s

    def _first_model(self) -> float:
        try:
            target = resolve(self.registry, self.champion.ref)
            scorer = load_scorer(self.registry, target.version, self.threads)
        except Exception as exc:  # noqa: BLE001 - every failure is retried: no model is the worst case
            self.failures += 1
            wait = min(RETRY_CAP_S, 2.0 ** (self.failures - 1))
            self.state.fail(_reason(exc))
            self.log.critical("model still not loaded (attempt %d): %s; retrying in %.0f s", self.failures + 1,
                              _reason(exc), wait, extra={"model_uri": self.model_uri, "retry_in_s": wait})
            return wait
        self.failures = 0
        self.champion.generation = target.generation
        self._swap(self.champion, scorer)
        return self.poll_s

    def _follow(self, followed: Followed) -> None:
        if not is_alias(followed.ref):
            return  # a fixed version never moves
        try:
            changed = self.registry.read_alias_if_changed(followed.ref, followed.generation)
        except Exception as exc:  # noqa: BLE001 - a failed poll is retried at the next one
            if followed.role == CHALLENGER and followed.generation is None:
                return  # no staging alias (yet): nothing to shadow
            self.log.warning("could not read alias %s: %s", followed.ref, _reason(exc),
                             extra={"alias": followed.ref, "model_version": self.state.version})
            return
        if changed is None:
            return
        record, generation = changed
        if self.state.is_refused(followed.role, record.version):
            followed.generation = generation  # still the refused version: not worth another download
            return
        self.state.forget_refusals(followed.role)  # the alias moved elsewhere: a refused one may come back
        current = self.state.scorer(followed.role)
        if current is not None and record.version == current.version:
            followed.generation = generation  # rewritten to the same version: nothing to load
            return
        # A version this worker already serves (staging promoted, or staging set to production) is
        # shared, not downloaded, verified and smoke-tested a second time.
        try:
            scorer = self.state.loaded(record.version) or load_scorer(self.registry, record.version, self.threads)
        except Exception as exc:  # noqa: BLE001
            if is_transient(exc):  # generation left unchanged: the next poll tries again
                self.log.warning("could not load %s yet: %s", record.version, _reason(exc),
                                 extra={"alias": followed.ref, "model_version": self.state.version})
                return
            followed.generation = generation
            self.state.refuse(followed.role, record.version, _reason(exc))
            self.log.error("refused model %s (%s %s): %s; %s keeps answering", record.version, followed.role,
                           followed.ref, _reason(exc), current.version if current else "no version",
                           extra={EVENT_KEY: MODEL_REFUSED_EVENT, "refused_version": record.version, "pid": os.getpid(),
                                  "alias": followed.ref, "role": followed.role,
                                  "model_version": self.state.version})
            return
        followed.generation = generation
        self._swap(followed, scorer)

    def _follow_rules(self, followed: Followed) -> None:
        try:
            changed = self.rulesets.read_alias_if_changed(followed.ref, followed.generation)
        except RuleSetNotFoundError:
            return  # no rule set under that alias (yet): no rules, nothing to say
        except Exception as exc:  # noqa: BLE001 - a failed poll is retried at the next one
            self.log.warning("could not read rule set alias %s: %s", followed.ref, _reason(exc),
                             extra={"alias": followed.ref, "model_version": self.state.version})
            return
        if changed is None:
            return
        record, generation = changed
        if self.state.is_refused(followed.role, record.version):
            followed.generation = generation
            return
        self.state.forget_refusals(followed.role)
        current = self.state.rule_set(followed.role)
        if current is not None and current.version == record.version:
            followed.generation = generation
            return
        try:
            rules = load_rules(self.registry, record.version)
        except Exception as exc:  # noqa: BLE001
            if is_transient(exc):
                self.log.warning("could not load rule set %s yet: %s", record.version, _reason(exc),
                                 extra={"alias": followed.ref, "model_version": self.state.version})
                return
            followed.generation = generation
            self.state.refuse(followed.role, record.version, _reason(exc))
            self.log.error("refused rule set %s (%s %s): %s; %s stays", record.version, followed.role, followed.ref,
                           _reason(exc), current.version if current else "no rule set",
                           extra={EVENT_KEY: RULES_REFUSED_EVENT, "refused_version": record.version,
                                  "pid": os.getpid(), "alias": followed.ref, "role": followed.role,
                                  "model_version": self.state.version})
            return
        followed.generation = generation
        self.swap_rules(followed, rules)

    def swap_rules(self, followed: Followed, rules: RuleSet) -> None:
        previous = self.state.apply_rules(followed.role, rules)
        self.log.info("rule set %s applied as %s (was %s)", rules.version, followed.role,
                      previous.version if previous else "none",
                      extra={EVENT_KEY: RULES_LOADED_EVENT, "rule_set": rules.version, "role": followed.role,
                             "pid": os.getpid(), "rules": len(rules), "alias": followed.ref,
                             "previous_rule_set": previous.version if previous else None,
                             "model_version": self.state.version})

    def _swap(self, followed: Followed, scorer: Scorer) -> None:
        previous = self.state.serve(followed.role, scorer)  # the one atomic swap every request reads once
        self.log.info("model %s answering as %s (was %s)", scorer.version, followed.role,
                      previous.version if previous else "none",
                      extra={EVENT_KEY: MODEL_LOADED_EVENT, "model_version": scorer.version, "role": followed.role,
                             "pid": os.getpid(),
                             "previous_version": previous.version if previous else None, "alias": followed.ref})

    # Thread -----------------------------------------------------------------------------------
    def start(self, initial_wait: float | None = None) -> None:
        """Start (or restart, in a forked worker) the polling thread."""
        self._stop = threading.Event()
        wait = initial_wait if initial_wait is not None else (1.0 if self.state.champion is None else self.poll_s)
        self._thread = threading.Thread(target=_loop, args=(weakref.ref(self), self._stop, wait),
                                        name="txguard-model-follower", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)


def _loop(ref: weakref.ref[ModelFollower], stop: threading.Event, wait: float) -> None:
    """Holds the follower only while a round runs, so a dropped service lets its thread end."""
    while not stop.wait(wait):
        follower: Any = ref()
        if follower is None:
            return
        try:
            wait = follower.check()
        except Exception:  # a bug must not kill the thread: log it and keep following
            follower.log.exception("model follower round failed")
            wait = follower.poll_s
        del follower
