"""`publisher bounces process`: every message of a folder read, applied, reported and moved.

Messages are applied in batches, one transaction each, and a batch is moved
only after its commit: a crash between the two leaves the batch in place,
and the next run finds each of its messages a duplicate. A message that
cannot be read is reported and left where it is; it never stops the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from publisher.delivery.bounces.actions import Applied, Bounce, BounceKind, apply_bounce
from publisher.delivery.bounces.mailboxes import Folder, Item
from publisher.delivery.bounces.reading import Finding, read_message
from publisher.errors import BounceError
from publisher.store import Store

logger = logging.getLogger(__name__)

BATCH = 200  # messages per transaction: one commit (and one fsync) for many


@dataclass(frozen=True, slots=True)
class IntakeRules:
    secret: bytes
    bounce_address: str | None  # [bounces] address: VERP tokens are looked for in it
    soft_limit: int


@dataclass
class IntakeTally:
    """What a run did, by outcome ("hard bounce", "duplicate", "malformed", …)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def summary(self) -> str:
        if not self.counts:
            return "no messages"
        return ", ".join(f"{count} {outcome}" for outcome, count in sorted(self.counts.items()))


def process_folder(
    store: Store,
    folder: Folder,
    rules: IntakeRules,
    *,
    now: Callable[[], datetime],
    report: Callable[[str], None] = lambda _line: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> IntakeTally:
    """Read, apply and move every message of *folder*; *report* gets one line per message."""
    tally = IntakeTally()
    batch: list[tuple[Item, Finding]] = []
    for item in folder.items():
        try:
            finding = read_message(item.data, name=item.name, bounce_address=rules.bounce_address)
        except BounceError as err:
            tally.add("malformed")
            report(f"{item.name} → malformed, left in place: {err.message}")
            continue
        batch.append((item, finding))
        if len(batch) >= BATCH:
            _apply_batch(store, folder, rules, batch, now(), report, tally)
            batch = []
        if should_stop():
            break
    _apply_batch(store, folder, rules, batch, now(), report, tally)
    return tally


def _apply_batch(
    store: Store,
    folder: Folder,
    rules: IntakeRules,
    batch: list[tuple[Item, Finding]],
    now: datetime,
    report: Callable[[str], None],
    tally: IntakeTally,
) -> None:
    if not batch:
        return
    lines = []
    with store.transaction():
        for _item, finding in batch:
            outcome, line = _apply_one(store, folder, rules, finding, now)
            tally.add(outcome)
            lines.append(line)
    folder.move([item for item, _finding in batch])  # only after the commit
    for line in lines:
        report(line)


def _apply_one(
    store: Store, folder: Folder, rules: IntakeRules, finding: Finding, now: datetime
) -> tuple[str, str]:
    """(outcome, report line) of one message, applied inside the batch's transaction."""
    if finding.kind == "auto-reply":
        return "auto-reply", f"{finding.label} → auto-reply ignored"
    if finding.kind == "unknown":
        return "not a bounce", f"{finding.label} → not a bounce or complaint, ignored"
    source = f"mailbox {folder.description} message {finding.label}"
    applied = _apply_finding(store, rules, finding, source, now)
    if applied.outcome == "not attributable":
        return "not attributable", f"{finding.label} → {finding.kind} not attributable, ignored"
    return applied.outcome, f"{finding.label} → {applied.line()}"


def _apply_finding(
    store: Store, rules: IntakeRules, finding: Finding, source: str, now: datetime
) -> Applied:
    """The first candidate token with a valid MAC decides; without one, nothing is attributed."""
    kind: BounceKind = (
        "hard" if finding.kind == "hard" else "soft" if finding.kind == "soft" else "complaint"
    )
    candidates: tuple[str | None, ...] = finding.tokens or (None,)
    for token in dict.fromkeys(candidates):
        bounce = Bounce(
            kind,
            finding.key,
            source,
            status=finding.status,
            detail=finding.detail,
            token=token,
            recipient=finding.recipient,
        )
        applied = apply_bounce(store, rules.secret, bounce, soft_limit=rules.soft_limit, now=now)
        if applied.outcome != "not attributable":
            return applied
    return Applied("not attributable")
