"""Domain errors. One base class; scoring errors carry their HTTP status, enrichment errors say
whether a retry may help (entry points map them to ack / retry / dead-letter in one place)."""

from __future__ import annotations


class TxguardError(Exception):
    """Base of every txguard error."""


# Contract --------------------------------------------------------------------------------------
class InvalidEventError(TxguardError):
    """A message that no redelivery will fix (not UTF-8, not JSON, schema error)."""

    def __init__(self, reason: str, kind: str = "schema") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


# Registry / model ----------------------------------------------------------------------------
class RegistryError(TxguardError):
    """Registry misuse or inconsistent registry state."""


class ModelNotFoundError(RegistryError):
    """The named version or alias does not exist."""


class ChecksumMismatchError(RegistryError):
    """An artifact's SHA-256 differs from the one recorded in its metadata."""


class RegistryUnavailableError(RegistryError):
    """The registry could not be reached (network, 5xx, 429): a retry may succeed."""


class ConcurrentUpdateError(RegistryError):
    """Someone else changed an alias or took a version number first (generation precondition)."""


class BlobExistsError(ConcurrentUpdateError):
    """`create` found the key already taken (another publisher got there first)."""


class RuleSetNotFoundError(ModelNotFoundError):
    """The named rule set version or alias does not exist."""


# Rules -----------------------------------------------------------------------------------------
class RuleError(TxguardError):
    """A rule or rule set that cannot serve (docs/rules.md)."""


class RuleCheckError(RuleError):
    """A rule refused when checked (saving, loading): every problem with its position.

    `problems` are dicts `{"rule": name, "field": "condition", "offset": 0-based, "line": 1-based,
    "column": 1-based, "message": ...}`, so the console can underline each one in its editor.
    """

    def __init__(self, problems: list[dict[str, object]]) -> None:
        self.problems = problems
        first = problems[0] if problems else {"message": "no rule"}
        where = f"rule {first['rule']!r}: " if first.get("rule") else ""
        at = f" (at {first['line']}:{first['column']})" if "line" in first else ""
        more = f"; and {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
        super().__init__(f"{where}{first['message']}{at}{more}")


class QualityGateError(TxguardError):
    """A trained model does not pass the quality gate. `report`: every figure measured before the
    refusal (held-out metrics, baseline, split), so a user sees how far off the model is; None
    when the model could not be measured at all (too little labelled fraud)."""

    def __init__(self, message: str, report: dict | None = None) -> None:
        super().__init__(message)
        self.report = report


class DataFileError(TxguardError):
    """A user's training or scoring file is malformed; the message names the first bad row."""


# Scoring -------------------------------------------------------------------------------------
class ScoringError(TxguardError):
    status: int = 500

    def __init__(self, message: str, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequestError(ScoringError):
    status = 400


class ValidationFailedError(ScoringError):
    status = 422


class PayloadTooLargeError(ScoringError):
    status = 413


class UnsupportedMediaTypeError(ScoringError):
    status = 415


class NotFoundError(ScoringError):
    status = 404


class MethodNotAllowedError(ScoringError):
    status = 405


class ModelUnavailableError(ScoringError):
    status = 503


# Enrichment -----------------------------------------------------------------------------------
class RetryableError(TxguardError):
    """A failure that may pass (store or scoring unavailable, timeout, 5xx): let Pub/Sub redeliver."""


class StoreUnavailableError(RetryableError):
    pass


class ScoringUnavailableError(RetryableError):
    pass


class PublishError(RetryableError):
    """Pub/Sub did not confirm a publish in time (or refused it): let the delivery be retried."""


class PermanentError(TxguardError):
    """A failure that will not pass on retry, for a message that is otherwise valid."""


class ConflictingTransactionError(PermanentError):
    """A transaction id seen before with different content: never enrich it under the same id."""


class ScoringRejectedError(PermanentError):
    """Scoring answered 4xx for a valid transaction: a retry would get the same answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"scoring rejected the transaction ({status}): {reason}")
        self.status = status


class IncompatibleModelError(RegistryError):
    """A model the serving code cannot use (other feature order, missing ONNX input/output)."""


class CounterpartyInFlightError(RetryableError):
    """Another delivery of the same transaction holds its counterparty update: retry after it."""


class ConflictingLabelError(PermanentError):
    """A label id seen before with different content: never apply it under the same id."""


class LabelRefusedError(PermanentError):
    """A valid label txguard will not believe: it came by a route that may not send it (`source`), names a
    transaction txguard never saw (`unknown_transaction`), or disagrees with the transaction's record
    (`mismatch`). `kind` is the `error_kind` it is parked on `invalid` with."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.kind = kind


class TransactionNotSeenYetError(RetryableError):
    """A label of a transaction not (yet) in the transaction index, published recently enough that the
    transaction may still come: retried, then refused (`LabelRefusedError`, unknown_transaction)."""


class ParityCheckError(IncompatibleModelError):
    """A model whose scores here differ from the ones recorded at training (its parity probe)."""


# Console ---------------------------------------------------------------------------------------
class ConsoleError(TxguardError):
    """A console request that cannot be done as asked; carries its HTTP status and, for bad
    input, one entry per field (`loc`, `msg`) so the page can name what to fix."""

    status: int = 400

    def __init__(self, message: str, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class ConsoleInputError(ConsoleError):
    status = 422


class AuthenticationError(ConsoleError):
    """No valid identity (the IAP assertion is missing or does not verify)."""

    status = 401


class ConsoleForbiddenError(ConsoleError):
    """The analyst is known but may not do this (moving production needs an approver)."""

    status = 403


class ConsoleNotFoundError(ConsoleError):
    status = 404


class ConsoleConflictError(ConsoleError):
    """Someone got there first: another analyst holds the claim, the item is already labelled,
    or a registry alias moved since it was read."""

    status = 409


class ConsoleUnavailableError(ConsoleError):
    """A dependency (queue store, Pub/Sub, scoring, registry) did not answer: try again."""

    status = 503
