"""The notes docs/reliability.md carries below the figures: how each figure is measured, and why."""

NOTES = """
## How the figures are measured

- **Stack.** `txguard local up`'s emulator stack, fresh for each run, loopback only: the Pub/Sub,
  Firestore and Cloud Storage (fake-gcs-server) emulators, the production topology from
  `shared/txguard/contract/names.py`, a model trained into `gs://txguard-models/registry`, and both functions
  under functions-framework (gunicorn), as Cloud Run serves them. The transactions subscription
  has production's settings (retry policy 1-60 s, 10 attempts then the dead-letter topic,
  ordering by wallet) and reaches the enrichment function through the push bridge
  (`scripts/txguard/local/bridge.py`): pull with up to 1,000 messages outstanding, the
  production push body, one message per wallet in flight, ack on 2xx, nack after production's
  backoff otherwise (the emulator's own push and ordering are not usable here, see the findings
  below). Scenarios run one after the other on the same stack, at 25 tx/s nominal; each uses
  transaction ids, wallets, counterparties and devices of its own, so each replay is complete.
- **Counting** is per transaction (`scripts/txguard/local/ledger.py`): `sent` counts Pub/Sub
  messages, `tx` distinct transactions. `decided`: at least one decision on `decisions`;
  `invalid`: its exact bytes came out on `invalid` (poison only); `dead-lettered`: pulled from
  `transactions-dead-letter-inspect` by the redrive; `lost`: published (confirmed by Pub/Sub)
  and no outcome when the drain ends, not even waiting on the dead-letter subscription. A drain
  ends when every transaction has an outcome; when nothing has arrived for a few seconds the
  dead-letter subscription is redriven (`scripts/txguard/ops/redrive.py`, the code behind
  `txguard dead-letter redrive`); it gives up after a minute without progress.
- **`double_counted` is measured, not inferred** (`scripts/txguard/reliability/history_check.py`):
  after each scenario every wallet it touched is read back from Firestore and compared with the
  offline sequential replay (`txguard.features.wallet.apply`, the training path) of the scenario's
  *distinct* transactions. Both hold one history entry per applied transaction, so comparing
  them as multisets counts exactly the transactions applied twice (`double_counted`) and the
  ones never applied or lost by the store (`missing`); the whole state documents (counterparties,
  first seen) must be equal too. All three are 0 in every scenario that passes.
- **Features per transaction, too.** The features each transaction was scored on (its processed
  record) are compared with the replay's point-in-time features of that transaction. They must
  be equal, unless an *earlier* transaction of the same wallet was flagged `late` (it arrived
  after this one was applied): such differences are counted as explained, any other one fails
  the scenario (`features_unexplained`). `late` counts the decisions flagged late. With
  ordering by wallet both are 0 everywhere; `txguard reliability --unordered` delivers without
  it and shows the skew the check then finds, all of it flagged.
- **Counterparty features per transaction.** The counterparty, device and wallet-label features
  each transaction was scored on are compared with the replay's (`txguard.features.timeline.replay`,
  training's path, with the scenario's labels at their `known_at`). Nothing orders other wallets'
  updates of a counterparty, so a transaction may have read it before an earlier update, held
  back by a failure, was applied. Such a difference is explained when the enrichment or label
  function logged that update as late (`late_update` line) at one of the transaction's entities,
  with a window of missed reads that contains its time; any other difference fails the scenario
  (`cp_features_unexplained`). `late_updates` counts the updates logged late (one per update and
  entity), `late_update_lag_s` how far past their own event time the reads had gone, and
  `late_update_delay_s` how long after publishing they were applied (wall clock). The simulated
  streams cover about two days of event time in a minute of publishing, so event-time lags are
  large; the wall-clock delay is what a failure costs.
- **Counterparty aggregates, measured** (`scripts/txguard/reliability/counterparty_check.py`):
  every counter the store holds for the scenario's counterparties, devices and wallets (all days,
  transactions and labels) against the offline replay of its distinct transactions and valid
  labels; `aggregate_cells_differing` must be 0 (an update added twice, lost or half applied
  would show). `open_leases` counts processed records whose counterparty update is still leased
  (never recorded applied): must be 0.

## The scenarios

1. **Duplicates**: every transaction published twice, as two distinct Pub/Sub messages with one
   transaction id. The second delivery finds the processed record (written in the same Firestore
   transaction as the wallet update) and republishes the stored decision: both copies are
   byte-identical (`identical`), the history has each transaction once.
2. **Poison**: 5 % of the messages replaced by malformed ones, twelve kinds taken in turn: not
   JSON (truncated), not UTF-8, a missing field, an extra field, a wrong type (object amount),
   `NaN` and `Infinity` amounts, negative and huge (1e15) amounts, a timestamp ten years ahead,
   an oversized payload (> 64 KiB) and a wrong root (an array wrapper). Each must come out on
   `invalid` with its original bytes and a `reason` attribute, and every valid one be decided.
3. **Scoring outage**: the scoring function's process group is killed mid-stream (20 s) and
   spawned again on the same port; `outage_s` runs from the kill to `/health` answering 200
   again (it includes the model load). Meanwhile the enrichment function has already applied
   each transaction to the history, fails on the scoring call and answers 503; Pub/Sub
   redelivers after its backoff (1 s, doubling), the redelivery reuses the stored features (no
   second application), and each failing wallet's later transactions wait behind it. A message
   that exhausted its 10 attempts would be dead-lettered and redriven after recovery
   (`redriven`); with production's backoff a 20 s outage costs about five attempts, so none is.
4. **Store outage**: the Firestore emulator is stopped mid-stream (10 s) and started again on
   the same port. The emulator keeps its data in memory, so a bare restart would come back empty,
   which a real Firestore outage never does: before stopping it, the scenario exports its data
   over the emulator's REST endpoint (`POST /emulator/v1/projects/<p>:export`) and restarts it
   with `--import-data`, so double counting is measured over *all* the data, not just what
   survived. The enrichment function is frozen (SIGSTOP) for the second the export takes, so no
   write lands between the snapshot and the stop (an artefact of the simulation, not of the
   pipeline); during the outage itself it runs and gets connection errors (`StoreUnavailableError`
   -> 503 -> redelivery). `outage_s` includes the emulator's start-up.
5. **Bad model**: two versions are published next to the production one, which is left alone:
   one whose artifact was altered after publishing (its SHA-256 no longer matches the metadata)
   and one whose artifact was deleted. A fresh scoring function started with
   `MODEL_URI=<registry>@vN` must answer 503 on `/health` (with the reason) and on `/score`, and
   log one CRITICAL line; the running function, which follows `production` (left alone here), must
   keep answering 200 with the production version while a stream goes through.
6. **Burst**: 10x the nominal rate (250 tx/s) for 10 s. `drain_s` runs from the end of
   publishing to the last outcome; the drain rate is that of one enrichment instance (8 threads)
   on the Firestore emulator, on a shared machine (Cloud Run scales out instead).
7. **Worker kill**: the enrichment function's gunicorn workers are killed with SIGKILL five times
   (three in the quick profile) while a stream goes through; the arbiter forks new ones. The
   requests they were serving are cut: the bridge sees a connection error and nacks, and those
   wallets wait. A worker killed inside a Firestore transaction leaves its wallet document locked
   until Firestore releases the locks of an inactive transaction, 60 s later (the cloud service
   has the same limit): the next deliveries of that wallet fail with contention
   (`StoreUnavailableError`, counted in `retried`) until then, which is most of `drain_s`. No
   transaction is lost or applied twice, and none is scored on a partial history.
8. **Flaky delivery**: 20 % of the deliveries fail at random, half refused before reaching the
   function (a 503 from the front end), half processed with their answer lost (the function
   acted, Pub/Sub never heard back, so it redelivers: `decision_copies` > `decided`, all copies
   identical). `failed_deliveries` counts them. Ordering keeps every wallet's history exact.
9. **Promotion**: production's model is published again as a new version (same artifact, so it
   passes every check, but decisions name it), promoted 10 s into a 60 s stream (4 s into 36 s in
   the quick profile) and rolled back 25 s later (16 s), with `txguard registry promote` /
   `rollback`'s code and nothing else: no restart, no redeploy. The scoring function follows the
   alias at its default poll (`MODEL_POLL_S` 10 s, docs/lifecycle.md). Passes only if every
   scoring worker logged the switch to the new version and back within 30 s of each change
   (`switched_*_s`), no scoring request answered 5xx and no delivery was retried, and every
   decision received names a version that the scoring function's log shows scoring that
   transaction (`decisions_not_matching` 0), with decisions of both versions, and only the
   original version scoring after the rollback.
10. **Rule promotion**: a rule set of the scenario's own (a review rule and a block rule that fire on
    a good share of the stream) is saved next to the stack's production rule set, promoted 10 s
    into a 60 s stream (4 s into 36 s) and rolled back 25 s later (16 s) with `txguard rules
    promote` / `rollback`'s code: no restart, no redeploy. The scoring function follows the rule set
    alias in the model follower's round (docs/rules.md). Passes only if every scoring worker logged
    the switch (`rules_loaded`) to the new set and back within 30 s of each change, no scoring request
    answered 5xx and no delivery was retried, and every decision matches the rule set active at its
    time: the set it names is the one the scoring log shows for that transaction, and evaluating that
    set again on the transaction as it was scored (its stored features) and the decision's score gives
    the same rules and outcome (`decisions_not_matching` 0 of `decisions_rechecked`); decisions of both
    sets were made, and only the original set decides after the rollback.
11. **Labels**: label events as real feeds send them, to the label function behind its two push
    subscriptions (the push bridge, like transactions; each label on its source's topic: analysts'
    verdicts on `labels-analyst`, the rest on `labels`), on counterparties and devices of the
    scenario's own (`scripts/txguard/reliability/label_events.py`), from four analysts and four
    processors (each well below the label limits): chargebacks and analyst verdicts, two fraud verdicts of one transaction, an analyst's "legitimate" followed by a
    chargeback, chargebacks reversed (some reversals published before their chargeback), a third
    of the labels published twice, labels of transactions published only after them (retried until
    the transaction is applied), labels of a transaction no one ever published (parked
    `unknown_transaction` once `LABEL_UNKNOWN_RETRY_S`, 45 s on this stack, has passed), six malformed kinds (not JSON, a missing field, known
    before its transaction, a verdict on a reversal, a reversal without target, an unknown kind)
    and, once the rest is applied, label ids reused with other content. Passes only if every
    valid label is acknowledged by the label function (its log: `applied`, `unchanged` or
    `duplicate` for every copy), every malformed or conflicting one comes out on `invalid` with a
    reason, none is lost or dead-lettered, and the fraud counters the store holds for every
    counterparty, wallet and device the labels name (Bigtable emulator or SQLite) equal the
    offline replay of the same label set (`txguard.features.label_ledger.apply_label` on a
    `CounterpartyBook`, training's path): `labels_double_counted` and `labels_missing` 0.
    Labels published after transactions they should have counted for (they became known
    before those transactions) are late updates: logged, and they explain the differences.
12. **Label poisoning** (`scripts/txguard/reliability/label_poisoning.py`): the attacks of
    docs/counterparty.md, "Who may label", beside genuine labels, with the label function's limits
    set low enough to reach (analyst 60, feed source 120, counterparty fraud 40 per hour). After its
    transactions, genuine chargebacks and analyst verdicts are applied; then at once: 200 forged
    analyst fraud labels of made-up transactions naming the victim shop (the one with the most
    genuine chargebacks), 15 labels on the wrong route (analyst verdicts on `labels`, chargebacks
    naming an analyst, chargebacks on `labels-analyst`), 20 chargebacks of real transactions naming
    the victim or another wallet, a storm of 360 reversals of the genuine chargebacks from one
    processor (3x its limit), and a burst of 60 fraud chargebacks on one shop (1.5x its limit). Then
    the review an operator would do (`txguard labels held`'s release and discard): the burst released,
    the storm discarded. Passes only if every forged, wrong-route and mismatched label is on `invalid`
    with its kind (`unknown_transaction`, `source`, `mismatch`) and none is applied or held, the storm
    and the burst are held beyond their limits and nothing else is, every genuine label is applied,
    the victim's label counters equal the replay of its genuine labels only, every label counter
    the scenario touches equals the replay of the labels applied, before and after the review
    (`counters_applied`, `counters_after_review`: 0 double counted, 0 missing), and nothing is lost or
    dead-lettered. A limit bounds the damage and does not undo it: the storm's reversals within the
    limit are applied (`storm_applied`).
13. **Counterparty hot**: 30 % of a 60 s stream (16 s in the quick profile) goes to one
    counterparty of the scenario's own while the enrichment workers are SIGKILLed four times
    (three). A transaction in flight in a killed worker, and its wallet's later ones behind it,
    are applied to that counterparty up to a minute later (the killed worker's Firestore
    transaction keeps its wallet locked 60 s), after many other wallets' reads of it. Passes only
    if the aggregates equal the replay and every decision scored on counterparty features that
    differ from the replay is explained by a logged late update.
14. **Counterparty outage**: the Bigtable emulator is frozen with SIGSTOP on the process group
    the stack started for it (by its PID) 15 s into a 60 s stream for 30 s (4 s into 24 s, for
    15 s, in the quick profile: longer than the client's 10 s deadline), then resumed with SIGCONT; a timer resumes it if the schedule is
    missed, and `finally` always does. Reads and applies wait for their 10 s deadline and fail
    (`StoreUnavailableError` -> 503 -> redelivery); an update whose apply failed hands its lease
    back; requests the client gave up on are served on resume (their markers make a second
    application a no-op). Passes only if deliveries were retried for the store, nothing is lost,
    no lease is left open, the aggregates equal the replay and every difference is explained.
    `markers_left` counts the exactly-once markers whose clean-up failed during the freeze
    (harmless: garbage collection drops them).

## Emulator finding: a push subscription with a retry policy stops redelivering

Production's push subscription has a retry policy (backoff 1-60 s) and 10 delivery attempts
before the dead-letter topic. On the Pub/Sub emulator (cloud-pubsub-emulator 0.8.20, gcloud
528) that combination stalls as soon as several pushes fail at the same time, which is exactly
what an outage does: the failing messages get two or three attempts and are then never pushed
again, nor dead-lettered. Measured with a push endpoint answering 500 to everything
(`python -m scripts.reliability.emulator_probe`, production's 10 attempts and 1-60 s backoff):

| run | attempts per message | dead-lettered | last push |
|---|---|---|---|
| `--messages 1 --seconds 90` | 10 (1 message) | 1 | 51 s before the end |
| `--messages 20 --seconds 90` | 2 (11 messages), 3 (9 messages) | 0 | 96 s before the end: none since the start |
| `--messages 20 --seconds 40 --no-retry-policy` | 10 (20 messages) | 20 | 30 s before the end: all 10 attempts within the first ~10 s |

And on the whole pipeline, `txguard reliability --only scoring_outage --keep-retry-policy`
(production's policy on the emulator, full profile): 1,068 of 1,500 transactions decided, the
other 432 neither redelivered nor dead-lettered 60 s after the last outcome (`lost` 432, exit 1).

The cause, read in the emulator's bytecode (`MessageBacklog`): a failed push sets the message's
ack deadline to 1 s; once it expires, a message with more than one attempt is parked in a
map of due times (`delayedMessagesByTime`, in milliseconds). The check that keeps a message
from being parked twice only recognises it when it is alone under its due time, so when two
failures land in the same millisecond one of them is parked again under a later time. When the
first time comes, the message is nacked and removed from the delivered set; when the second
comes, `nackMessage` dereferences the delivery that is no longer there: a
`NullPointerException` escapes the scheduled `ExpireOutstandingMessagesRunnable` (it only
catches `StatusException`), and the executor cancels that periodic task for good. From then
on no parked message of that subscription is ever redelivered.

What we do about it: the push bridge. It pulls the subscription and spaces the redeliveries
itself, with production's backoff, so the emulator's subscription is created without a retry
policy and this scheduler is never used. Pull does not avoid it otherwise: with a retry policy,
a nack after the first attempt is parked in the same map, and a message whose lease lapses
while it waits there is parked again at the next pull whenever another shares its due time.
Once, in `tests/e2e/test_reliability_quick.py` (`flaky_delivery`), the 9 transactions of one
wallet were never decided: the emulator did not redeliver the first of them after a failed
delivery, as happens once that task has failed (the run's logs do not say more), and the bridge
kept the wallet's later ones behind it, as ordering requires. With `--push emulator` (the emulator's own push),
`txguard reliability` creates the push subscription *without* the retry policy instead
(`StackOptions.emulator_retry_policy=False`; production is unchanged, the cloud service does
not have this bug), and a 20 s outage then dead-letters what production would simply redeliver.
Either way, after recovery the drain runs the same code as `txguard dead-letter redrive` (pull
`transactions-dead-letter-inspect`, republish to `transactions` with the producer's attributes,
ack after the publish is confirmed) and every redriven transaction is decided exactly once (the
processed record absorbs the replays). In production, alert on the dead-letter subscription's
backlog and redrive once the cause is fixed.

## Emulator findings on pull: backoff, and ordering with a dead-letter policy

- On a pull subscription with a retry policy the emulator redelivers a nacked message about a
  second later whatever the policy says (50 messages nacked together ten times: all
  dead-lettered within about 30 s, where production's 1-60 s backoff takes about four minutes).
  The bridge therefore sends each nack after production's backoff for that attempt itself (1 s,
  2 s, 4 s, ... up to 60 s), on a subscription created without a retry policy (above), which the
  emulator redelivers at once.
- With both message ordering and a dead-letter policy, the emulator loses the message it should
  dead-letter (nothing reaches the dead-letter topic) and then delivers nothing more on that
  subscription, on any ordering key (`tests/integration/test_push_bridge.py`, last test). Its
  subscription is therefore created without ordering (`txguard.local.topology`), and the bridge
  orders by key itself: one message per wallet in flight; a failed one blocks its wallet until
  the emulator redelivers it, or dead-letters it, which releases the wallet (what Cloud Pub/Sub
  does with ordering and a dead-letter policy).

## What the runs showed besides the counts

- **Duplicates used to drain slowly on the emulator.** The two copies of one transaction, processed
  at the same time, both recorded their decision in a Firestore transaction on the same processed
  record, and the emulator resolves such a lock conflict only by its ~2 s lock timeout
  (docs/enrichment.md): store time p95 was about 2 s against 35 ms p50 and the scenario drained in
  67 s. The store now records a decision under the same in-process wallet lock as the enrichment
  step, so copies in one instance take turns: `txguard reliability --only duplicates` drained in
  0.0 s afterwards. Across instances, the transaction retries remain the safety net.
- **A store outage is a pause, not a wave of failures, on this stack.** The deliveries in flight
  when Firestore stops wait in the Firestore client's own retries until it is back (about 20 s,
  enrichment log `timings.store_ms`). Then they either complete, or, when their Firestore
  transaction had begun before the stop, fail with `Transaction is invalid or expired` (the
  restarted emulator does not know it): `StoreUnavailableError` -> 503 -> redelivered and
  decided (the `retried` column shows which happened in a run).
- **Scoring outage.** Each delivery during the outage costs an attempt (enrichment answers 503
  as soon as the scoring call is refused) and its wallet waits for the backoff.

## Limits

- Timings (drain, outage) come from a 2-core machine shared with other work and vary from run
  to run; the counts (lost, double counted, decided) must not.
- The emulator stack has one instance of each function; cross-instance races on one wallet
  are covered by `tests/integration/test_enrich_history_firestore.py`, not here.
- `--embedded` runs the same scenarios without gcloud (in-process Pub/Sub, SQLite history);
  the store outage is skipped there.
"""
