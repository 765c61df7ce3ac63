"""The send loop: one digest's messages, with the ledger committed around every one.

A row is committed as `sending` before its message leaves and as `sent`,
`failed` or back to `pending` after, so a crash can at worst leave one row
uncertain. The loop is handed each recipient's finished message by the
caller (`message_for`): it never composes, so delivery knows nothing of
digests but their ledger rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from publisher import tokens
from publisher.delivery.senders import Sender, SendResult
from publisher.errors import TransientDeliveryError
from publisher.model import DeliveryStatus, Message, SendOutcome, Subscriber
from publisher.store import Store

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
    rate: float  # messages per second; 0 is unlimited
    bounce_after: int  # hard failures before a subscriber is marked bounced
    resend_uncertain: bool  # send rows an interrupted run left `sending` too
    secret: bytes  # keys the suppression entry of a subscriber marked bounced


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
) -> None:
    """Send every pending row of *digest_id*; finish the digest when none is left.

    :raises TransientDeliveryError: when the server stops answering; what is
        left stays pending for the next run.
    """
    loop = _Loop(store, digest_id, sender, message_for, rules, tally, now, sleep)
    if not rules.resend_uncertain:
        loop.settle_uncertain()
    loop.run(should_stop, progress)


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
        self.interval = 1 / rules.rate if rules.rate > 0 else 0.0
        self.last_start = 0.0
        # The outcome of message i goes in the transaction that marks message
        # i+1 `sending`: one commit per message. A crash between a send and
        # that commit leaves one row `sending`, exactly as a commit of its own would.
        self.outcome: tuple[Subscriber, SendResult] | None = None

    def settle_uncertain(self) -> None:
        """Rows an interrupted run left `sending`: the outbox can tell whether they
        arrived; SMTP cannot, so they wait for --resend-uncertain."""
        for row in list(self.store.iter_deliveries(self.digest_id, ("sending",))):
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
        stop_error: TransientDeliveryError | None = None
        try:
            for row in self.store.iter_deliveries(self.digest_id, statuses):
                if should_stop():
                    self.tally.stopped = True
                    break
                stop_error = self._send(row.subscriber)
                if tick:
                    tick(1)
                if stop_error is not None:
                    break
        finally:
            if self.outcome is not None:
                with self.store.transaction():
                    self._record_outcome()
        if self.store.count_deliveries(self.digest_id, ("pending", "sending")) == 0:
            with self.store.transaction():
                self.store.finish_digest(self.digest_id, now=self.now())
        if stop_error is not None:
            raise stop_error

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
            self.store.set_delivery(
                self.digest_id, subscriber.id, "sending", now=self.now(), count_attempt=True
            )
        result = self.sender.send(message)
        self.outcome = (subscriber, result)
        if result.outcome == "transient" and result.is_connection_problem:
            return TransientDeliveryError(self.sender.description, result.reply)
        return None

    def _keep_rate(self) -> None:
        if self.interval:
            wait = self.last_start + self.interval - time.monotonic()
            if wait > 0:
                self.sleep(wait)
        self.last_start = time.monotonic()

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
            self.tally.bounced.append(subscriber.email)
