"""The send loop: one digest's messages, with the ledger committed around every one.

A row is committed as `sending` before its message leaves and as `sent`,
`failed` or back to `pending` after, so a crash can at worst leave one row
uncertain. The loop is handed each recipient's finished message by the
caller (`message_for`): it never composes, so delivery knows nothing of
digests but their ledger rows.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from publisher import tokens
from publisher.delivery.senders import Sender, SendResult
from publisher.errors import TransientDeliveryError
from publisher.model import DeliveryStatus, Message, SendOutcome, Subscriber
from publisher.output import process_alive
from publisher.store import PendingDelivery, Store

logger = logging.getLogger(__name__)

# What each outcome leaves in the ledger: an uncertain row stays `sending`,
# reported, and is not sent again unless the operator asks.
_LEDGER_STATUS: dict[SendOutcome, DeliveryStatus] = {
    "sent": "sent",
    "permanent": "failed",
    "transient": "pending",
    "uncertain": "sending",
}
Progress = Callable[[int], None]


@dataclass
class SendTally:
    """What a send did, counted as it goes."""

    sent: int = 0
    failed: int = 0
    deferred: int = 0  # transient failures left pending for the next run
    uncertain: int = 0  # rows left in `sending`
    recovered: int = 0  # uncertain rows found delivered (outbox) and marked sent
    bounced: list[str] = field(default_factory=list)
    stopped: bool = False  # a stop was requested and honoured


@dataclass(frozen=True, slots=True)
class SendRules:
    rate: float  # messages per second for the whole digest, all senders together; 0 is unlimited
    bounce_after: int  # hard failures before a subscriber is marked bounced
    resend_uncertain: bool  # send rows an interrupted run left `sending` too
    secret: bytes  # keys the suppression entry of a subscriber marked bounced
    # A sender silent this long is taken for gone: what it claimed and did not
    # send goes to the others; what it left `sending` stays uncertain.
    sender_timeout: timedelta = timedelta(seconds=60)


# Rows claimed at a time: small, so that a sender that dies strands few, and
# others need not wait long for them.
CLAIM_BATCH = 20


def send_digest(
    store: Store,
    digest_id: int,
    sender: Sender,
    message_for: Callable[[Subscriber], Message],
    *,
    rules: SendRules,
    tally: SendTally,
    now: Callable[[], datetime],
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int], Progress] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    settle: bool = True,
) -> None:
    """Send this sender's share of *digest_id*'s pending rows; finish the digest when none is left.

    Any number of senders (processes, machines) may run this on one digest at
    once: each claims rows for itself, and none is sent twice. With *settle*,
    rows a dead sender left `sending` are looked at (and counted) first.

    :raises TransientDeliveryError: when the server stops answering; what is
        left stays pending for the next run.
    """
    loop = _Loop(store, digest_id, sender, message_for, rules, tally, now, sleep)
    with store.transaction():
        _retire_dead_neighbours(store)
        store.register_sender(loop.worker, now=now())
    try:
        if settle and not rules.resend_uncertain:
            loop.settle_uncertain()
        loop.run(should_stop, progress)
    finally:
        with store.transaction():
            store.retire_sender(loop.worker)
        loop.finish()


_HOST = socket.gethostname()


def live_senders(store: Store, *, since: datetime) -> list[str]:
    """The senders alive now: heard from since *since*, and not a dead process of this machine.

    What `digest status` and `digest failures` need to tell a row in flight
    from one a stopped sender left uncertain.
    """
    return [w for w in store.live_senders(since=since) if not _is_dead_neighbour(w)]


def _is_dead_neighbour(worker: str) -> bool:
    host, pid, *_rest = [*worker.split(":"), "", ""]
    return host == _HOST and pid.isdigit() and not process_alive(int(pid))


def _retire_dead_neighbours(store: Store) -> None:
    """Senders of this machine whose process is gone: their claims go back at once.

    A sender on another machine is known dead only by its silence (the
    timeout); one of this machine, by its process id (inside a transaction).
    """
    for worker in store.senders_named(f"{_HOST}:"):
        if _is_dead_neighbour(worker):
            store.retire_sender(worker)


class _Loop:
    def __init__(
        self,
        store: Store,
        digest_id: int,
        sender: Sender,
        message_for: Callable[[Subscriber], Message],
        rules: SendRules,
        tally: SendTally,
        now: Callable[[], datetime],
        sleep: Callable[[float], None],
    ) -> None:
        self.store = store
        self.digest_id = digest_id
        self.sender = sender
        self.message_for = message_for
        self.rules = rules
        self.tally = tally
        self.now = now
        self.sleep = sleep
        self.worker = f"{_HOST}:{os.getpid()}:{secrets.token_hex(4)}"
        self.interval = timedelta(seconds=1 / rules.rate) if rules.rate > 0 else None
        # The outcome of message i goes in the transaction that marks message
        # i+1 `sending`: one commit per message. A crash between a send and
        # that commit leaves one row `sending`, exactly as a commit of its own would.
        self.outcome: tuple[Subscriber, SendResult] | None = None

    def silent_before(self) -> datetime:
        return self.now() - self.rules.sender_timeout

    def settle_uncertain(self) -> None:
        """Rows a sender that is gone left `sending`: the outbox can tell whether they
        arrived; SMTP cannot, so they wait for --resend-uncertain."""
        stale = self.store.stale_sending(self.digest_id, silent_before=self.silent_before())
        for row in stale:
            delivered = self.sender.is_delivered(self.message_for(row.subscriber))
            if delivered is None:
                self.tally.uncertain += 1
                continue
            with self.store.transaction():
                if delivered:
                    reply = "found delivered after an interrupted run"
                    self._mark(row.subscriber, "sent", reply=reply)
                else:
                    self._mark(row.subscriber, "pending")
            self.tally.recovered += int(delivered)

    def run(
        self, should_stop: Callable[[], bool], progress: Callable[[int], Progress] | None
    ) -> None:
        statuses = ("pending", "sending") if self.rules.resend_uncertain else ("pending",)
        total = self.store.count_deliveries(self.digest_id, statuses)
        tick = progress(total) if progress and total else None
        try:
            while not self.tally.stopped:
                batch = self._next_batch()
                if not batch:
                    break
                for row in batch:
                    if should_stop():
                        self.tally.stopped = True
                        break
                    stop_error = self._send(row.subscriber)
                    if tick:
                        tick(1)
                    if stop_error is not None:
                        raise stop_error
        finally:
            if self.outcome is not None:
                with self.store.transaction():
                    self._record_outcome()

    def finish(self) -> None:
        if self.store.count_deliveries(self.digest_id, ("pending", "sending")) == 0:
            with self.store.transaction():
                self.store.finish_digest(self.digest_id, now=self.now())

    def _next_batch(self) -> list[PendingDelivery]:
        """The rows to send next; none when the digest is done, as far as this sender can do.

        While other live senders hold rows, it waits for them (should they go silent).
        Once none does, it claims once more: a sender found dead, or silent too long,
        since the last claim has left its rows free, and no one else may be left to
        take them.
        """
        while True:
            batch = self._claim()
            if batch:
                return batch
            if not self._wait_for_others():
                return self._claim()

    def _claim(self) -> list[PendingDelivery]:
        with self.store.transaction():
            return self.store.claim_deliveries(
                self.digest_id,
                self.worker,
                limit=CLAIM_BATCH,
                silent_before=self.silent_before(),
                uncertain_too=self.rules.resend_uncertain,
            )

    def _wait_for_others(self) -> bool:
        """Nothing left to claim: wait while other senders hold rows, should they go silent.

        Returns False when no other sender holds any (the digest is done, as
        far as this sender can do anything for it).
        """
        with self.store.transaction():
            self._record_outcome()
            _retire_dead_neighbours(self.store)
            self.store.heartbeat(self.worker, now=self.now())
            held = self.store.held_elsewhere(
                self.digest_id, self.worker, silent_before=self.silent_before()
            )
        if held:
            self.sleep(min(1.0, self.rules.sender_timeout.total_seconds() / 4))
        return held > 0

    def _send(self, subscriber: Subscriber) -> TransientDeliveryError | None:
        """Send to one subscriber; the error that must stop the loop, if any."""
        if subscriber.status != "active":
            with self.store.transaction():
                self._record_outcome()
                error = f"not sent: the subscriber is {subscriber.status}"
                self._mark(subscriber, "failed", error=error)
            self.tally.failed += 1
            return None
        self._keep_rate()
        message = self.message_for(subscriber)
        with self.store.transaction():
            self._record_outcome()
            is_ours = self.store.mark_sending(
                self.digest_id, subscriber.id, self.worker, now=self.now()
            )
        if not is_ours:
            return None  # taken over while this sender was silent: someone else sends it
        result = self.sender.send(message)
        self.outcome = (subscriber, result)
        if result.outcome == "transient" and result.is_connection_problem:
            return TransientDeliveryError(self.sender.description, result.reply)
        return None

    def _keep_rate(self) -> None:
        """Wait for this digest's next slot, shared by every sender (the rate is the digest's)."""
        if self.interval is None:
            return
        with self.store.transaction():
            slot = self.store.reserve_send_slot(
                self.digest_id, now=self.now(), interval=self.interval
            )
            self.store.heartbeat(self.worker, now=self.now())  # however long the wait
        wait = (slot - self.now()).total_seconds()
        if wait > 0:
            self.sleep(wait)

    def _mark(
        self,
        subscriber: Subscriber,
        status: DeliveryStatus,
        *,
        error: str | None = None,
        reply: str | None = None,
    ) -> None:
        self.store.set_delivery(
            self.digest_id, subscriber.id, status, now=self.now(), error=error, reply=reply
        )

    def _record_outcome(self) -> None:
        """Write the last send's outcome to the ledger (inside the caller's transaction)."""
        if self.outcome is None:
            return
        subscriber, result = self.outcome
        self.outcome = None
        error = None if result.outcome == "sent" else result.reply
        self._mark(subscriber, _LEDGER_STATUS[result.outcome], error=error, reply=result.reply)
        if result.outcome == "sent":
            if subscriber.hard_failures:
                self.store.reset_hard_failures(subscriber.id)
            self.tally.sent += 1
        elif result.outcome == "permanent":
            self.tally.failed += 1
            self._hard_failure(subscriber)
        elif result.outcome == "transient":
            self.tally.deferred += 1
        else:
            self.tally.uncertain += 1
            logger.warning("%s: %s", subscriber.email, result.reply)

    def _hard_failure(self, subscriber: Subscriber) -> None:
        now = self.now()
        if self.store.record_hard_failure(
            subscriber.id, bounce_after=self.rules.bounce_after, now=now
        ):
            # Kept beyond the row, so that a removal and a re-import cannot revive it.
            key = tokens.suppression_key(self.rules.secret, subscriber.email)
            self.store.insert_suppression(key, "bounced", now=now)
            reason = (
                f"hard SMTP failures: {self.rules.bounce_after} in a row "
                f"([delivery] bounce_after), digest {self.digest_id}"
            )
            self.store.record_event(
                key, subscriber.id, change="active→bounced", reason=reason, source="smtp", now=now
            )
            self.tally.bounced.append(subscriber.email)
