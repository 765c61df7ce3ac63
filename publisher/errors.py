"""One exception family; every message reads `<where>: <what is wrong>`."""

from __future__ import annotations

from dataclasses import dataclass


class PublisherError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code = 1

    def __init__(self, where: str, message: str) -> None:
        super().__init__(where, message)
        self.where = where
        self.message = message

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def lines(self) -> list[str]:
        """One `where: what` line per problem (a config file may have several)."""
        prefix = f"{self.where}: " if self.where else ""
        return [prefix + line for line in self.message.split("\n")]


class ConfigError(PublisherError):
    """publisher.toml or the command line asks for something impossible."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One field of one article that is wrong (not an exception: they are collected)."""

    field: str
    message: str


class ContentError(PublisherError):
    """One article file cannot be loaded; carries every problem found in it."""

    def __init__(self, where: str, problems: list[FieldProblem]) -> None:
        self.problems = tuple(problems)
        summary = "; ".join(f"{p.field}: {p.message}" for p in self.problems)
        super().__init__(where, summary)

    def lines(self) -> list[str]:
        """One `path: field: problem` line per problem."""
        return [f"{self.where}: {p.field}: {p.message}" for p in self.problems]


class TemplateError(PublisherError):
    """A template fails to load or render; `where` names template and line."""


class StoreError(PublisherError):
    """The state database cannot be opened, migrated or written."""


class MigrationError(StoreError):
    """The state database is newer than this program or a migration failed."""


class OutputError(PublisherError):
    """An output file cannot be written, or a path escapes the output folder."""


class DeliveryError(PublisherError):
    """Messages cannot be delivered (the run stops; the ledger keeps what is left pending)."""


class TransientDeliveryError(DeliveryError):
    """The server is unreachable or keeps answering 4xx: try again later."""


class PermanentDeliveryError(DeliveryError):
    """The server refuses us outright (for example, login refused)."""


class LockHeldError(PublisherError):
    """Another run holds the site's lock; *holder* says who ("pid 42, `publisher build`, …")."""

    exit_code = 75

    def __init__(self, where: str, holder: str) -> None:
        self.holder = holder
        super().__init__(where, f"{self.busy}; try again later")
        self.args = (where, holder)  # pickled and made again as it was made

    @property
    def busy(self) -> str:
        """Who holds it, without the advice: a sender that helps instead does not try later."""
        return f"another publisher run holds the lock ({self.holder})"


class SubscriberError(PublisherError):
    """An address, CSV file, unsubscribe token or secret that cannot be used."""

    exit_code = 1


class BounceError(PublisherError):
    """A bounce message, mailbox or provider request that cannot be read or trusted."""

    exit_code = 1
