"""Every error labelsync raises on purpose is a `LabelSyncError`.

Errors about bad input are also `ValueError`s (and unknown ids also
`LookupError`s), so callers can catch the builtin they already expect.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = [
    "AlreadyExists",
    "AlreadyReverted",
    "InvalidInput",
    "JobSuperseded",
    "LabelLocked",
    "LabelSyncError",
    "MissingExtra",
    "NotFound",
    "PermissionDenied",
    "Retryable",
    "StorageBusy",
    "StorageCorrupt",
    "StorageError",
    "StorageFull",
    "StorageReadOnly",
    "StorageUnavailable",
    "UnknownJob",
    "UnknownTenant",
    "UnknownUser",
]


class LabelSyncError(Exception):
    """Raised for every failure labelsync reports on purpose; the base to catch.

    Every one pickles whole, all its attributes equal after a round trip: task
    queues (Celery, RQ) ship a task's exception to another process.
    """

    def __reduce__(self) -> tuple[Callable[..., object], tuple[object, ...], dict[str, object]]:
        # The default calls the class again with `args`, the message alone, which most
        # subclasses' constructors do not take (or take as something else). Rebuild the
        # exception as it is instead: same class and args, then every attribute it holds.
        state = dict(vars(self))
        if isinstance(self, ImportError):  # MissingExtra: these live outside __dict__
            state.update(msg=self.msg, name=self.name, path=self.path)
        return _rebuilt, (type(self), *self.args), state


class Retryable:
    """A marker mixed into errors that a host should retry: the same call may succeed later.

    Catch it with ``except Retryable`` (it is a plain class, so combine it with
    `LabelSyncError` in the ``except`` tuple or check ``isinstance``). Every
    other `LabelSyncError` is final: retrying the same call fails the same way.
    """


class InvalidInput(LabelSyncError, ValueError):
    """Raised when a value is malformed; names the field and the value, and nothing is stored."""

    field: str
    value: object
    problem: str

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field}: {value!r} {problem}")


class NotFound(InvalidInput, LookupError):
    """Raised when an id names nothing that exists."""


class UnknownTenant(NotFound):
    """Raised when a tenant id is not in the store."""

    def __init__(self, tenant_id: object) -> None:
        super().__init__("tenant_id", tenant_id, "is not a known tenant")


class UnknownUser(NotFound):
    """Raised when a user id is not a User of the tenant."""

    tenant_id: object

    def __init__(self, user_id: object, tenant_id: object) -> None:
        self.tenant_id = tenant_id
        super().__init__("user_id", user_id, f"is not a User of tenant {tenant_id!r}")


class UnknownJob(NotFound):
    """Raised when a push job id is not in the store."""

    def __init__(self, job_id: object) -> None:
        super().__init__("job_id", job_id, "is not a known push job")


class AlreadyExists(InvalidInput):
    """Raised when creating something whose id is already taken."""


class PermissionDenied(LabelSyncError):
    """Raised when the actor lacks the permission a use case needs (R1, R8)."""


class LabelLocked(PermissionDenied):
    """Raised when a User changes a label their admin locked (R17), for the tenant or in their
    group's preset (R21); nothing is written."""

    def __init__(self, user_id: str, label: str, *, by: str | None = None) -> None:
        self.user_id = user_id
        self.label = label
        self.by = by  # None: the tenant's locks (R17); else e.g. "preset 'Sales'" (R21)
        super().__init__(
            f"synced: {label} is locked by {by or 'the admin of this tenant'}; "
            f"User {user_id!r} cannot change it (it is managed by your admin)"
        )


class AlreadyReverted(InvalidInput):
    """Raised when reverting a push that was already reverted (R19); nothing is written."""

    def __init__(self, job_id: str, revert_id: str) -> None:
        self.job_id = job_id
        self.revert_id = revert_id
        super().__init__("job_id", job_id, f"was already reverted (by revert {revert_id!r})")


class JobSuperseded(LabelSyncError):
    """Raised when running a push job that a newer push for the same tenant replaced (R10)."""

    def __init__(self, job_id: str, by: str | None) -> None:
        self.job_id = job_id
        self.by = by
        newer = f" by job {by!r}" if by else ""
        super().__init__(f"job_id: {job_id!r} was superseded{newer}; it writes nothing more")


class MissingExtra(LabelSyncError, ImportError):
    """Raised when a feature needs an optional dependency that is not installed."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        super().__init__(
            f"{feature} needs {module!r}, which is not installed; "
            f"install the extra: pip install 'labelsync[{extra}]'"
        )


class StorageError(LabelSyncError):
    """Raised when storage fails under labelsync; `path` names where, the message what to do.

    Nothing of the failed call was written (its transaction was rolled back).
    """

    path: str

    def __init__(self, path: str, problem: str, advice: str) -> None:
        self.path = path
        self.problem = problem
        self.advice = advice
        super().__init__(f"{path}: {problem}; {advice}")


class StorageCorrupt(StorageError):
    """Raised when the database is damaged (or is not a database): restore it from a backup."""


class StorageReadOnly(StorageError):
    """Raised when the database cannot be written: its file, directory or mount is read-only."""


class StorageFull(StorageError):
    """Raised when a write finds no room: the disk is full or a file size limit was reached."""


class StorageBusy(StorageError, Retryable):
    """Raised when another writer held the database past the wait (a lock, a conflict); retry."""


class StorageUnavailable(StorageError, Retryable):
    """Raised when the database cannot be reached (connection lost, server down); retry later."""


def _rebuilt(cls: type[LabelSyncError], *args: object) -> LabelSyncError:
    """An unpickled error before its attributes return: its class with its args, no constructor
    (a subclass's takes other arguments than the message `args` holds)."""
    return cls.__new__(cls, *args)
