"""Every `LabelSyncError` pickles whole: task queues (Celery, RQ) ship a task's exception to
another process, and it must arrive as the same error with the same attributes."""

from __future__ import annotations

import ast
import concurrent.futures
import importlib
import multiprocessing
import pickle
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import labelsync
from labelsync.adapters.imap import ImapError
from labelsync.exceptions import (
    AlreadyExists,
    AlreadyReverted,
    InvalidInput,
    JobSuperseded,
    LabelLocked,
    LabelSyncError,
    MissingExtra,
    NotFound,
    PermissionDenied,
    StorageBusy,
    StorageCorrupt,
    StorageError,
    StorageFull,
    StorageReadOnly,
    StorageUnavailable,
    UnknownJob,
    UnknownTenant,
    UnknownUser,
)
from labelsync.io import InvalidSnapshot

SRC = Path(labelsync.__file__).parent

# One error of each class, built as labelsync builds it where it raises it.
EXAMPLES: list[LabelSyncError] = [
    LabelSyncError("store.save_users: the store returned 3 results for 2 Users"),
    InvalidInput("User.email", "ana@", "is not an email address"),
    NotFound("preset", "Sales", "is not a preset of tenant 'acme'"),
    UnknownTenant("nope"),
    UnknownUser("zed", "acme"),
    UnknownJob("9f2c"),
    AlreadyExists("tenant.id", "acme", "is already a stored tenant"),
    AlreadyReverted("9f2c", "r-17"),
    InvalidSnapshot(
        # A generator, as io.load passes its problems: consumed once, by the constructor.
        (problem for problem in ["users[0].id: '' must be non-empty", "name: 7 is not a str"]),
        source="acme.json",
    ),
    PermissionDenied("actor_id: 'ana' lacks ADMIN_ACCESS in tenant 'acme'"),
    LabelLocked("ana", "INBOX"),
    LabelLocked("ana", "SENT", by="preset 'Sales'"),
    JobSuperseded("9f2c", "a1b2"),
    JobSuperseded("9f2c", None),
    MissingExtra("Changes.to_frame", "notebook", "pandas"),
    StorageError("acme.db", "SQLite failed: disk I/O error", "check the file and the disk"),
    StorageCorrupt("acme.db", "the database is damaged", "restore it from a backup"),
    StorageReadOnly("acme.db", "the file is read-only", "make it writable"),
    StorageFull("acme.db", "the disk is full", "free some space"),
    StorageBusy("acme.db", "the database is locked", "retry later"),
    StorageUnavailable("postgresql://db/ls", "the server closed the connection", "retry later"),
    ImapError("imap.example.com:993: LOGIN refused: [AUTHENTICATIONFAILED]"),
]


def whole(error: BaseException) -> tuple[object, ...]:
    """Everything an error carries: class, args, message, every attribute (ImportError's too)."""
    builtin = (error.msg, error.name, error.path) if isinstance(error, ImportError) else ()
    return type(error), error.args, str(error), vars(error), builtin


def labelsync_modules() -> Iterator[str]:
    for module in pkgutil.walk_packages(labelsync.__path__, "labelsync."):
        if not module.name.endswith("__main__"):  # running the command is not importing it
            yield module.name


def subclasses(cls: type[LabelSyncError]) -> Iterator[type[LabelSyncError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def test_every_error_class_labelsync_defines_has_an_example_here() -> None:
    for name in labelsync_modules():
        importlib.import_module(name)
    defined = {cls for cls in subclasses(LabelSyncError) if cls.__module__.startswith("labelsync")}

    assert sorted(c.__qualname__ for c in defined | {LabelSyncError}) == sorted(
        {type(e).__qualname__ for e in EXAMPLES}
    )


def test_every_error_class_raised_in_src_has_an_example_here() -> None:
    raised = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                if isinstance(func, ast.Name):
                    raised.add(func.id)
    examples = {type(e).__qualname__ for e in EXAMPLES}
    all_errors = {c.__qualname__ for c in subclasses(LabelSyncError)} | {"LabelSyncError"}

    assert {"LabelLocked", "AlreadyReverted", "InvalidInput", "InvalidSnapshot"} <= raised
    assert set() == (raised & all_errors) - examples


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("protocol", [0, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
def test_an_error_survives_pickling_whole(error: LabelSyncError, protocol: int) -> None:
    again = pickle.loads(pickle.dumps(error, protocol=protocol))

    assert whole(error) == whole(again)


def test_a_label_locked_error_keeps_who_locked_what_for_whom() -> None:
    again = pickle.loads(pickle.dumps(LabelLocked("ana", "SENT", by="preset 'Sales'")))

    assert ("ana", "SENT", "preset 'Sales'") == (again.user_id, again.label, again.by)
    assert isinstance(again, PermissionDenied)
    assert str(again).startswith("synced: SENT is locked by preset 'Sales'; User 'ana'")


def test_an_already_reverted_error_keeps_the_job_the_revert_and_the_field() -> None:
    again = pickle.loads(pickle.dumps(AlreadyReverted("9f2c", "r-17")))

    assert ("9f2c", "r-17") == (again.job_id, again.revert_id)
    assert ("job_id", "9f2c") == (again.field, again.value)
    assert isinstance(again, ValueError)


def test_an_invalid_input_keeps_the_field_the_value_and_the_problem() -> None:
    error = InvalidInput("Audience.user_ids[0]", "", "must be a non-empty string")
    error.add_note("while pushing to acme")

    again = pickle.loads(pickle.dumps(error))

    assert ("Audience.user_ids[0]", "", "must be a non-empty string") == (
        again.field,
        again.value,
        again.problem,
    )
    assert ["while pushing to acme"] == again.__notes__


def _locked_in_a_worker(user_id: str) -> None:
    raise LabelLocked(user_id, "INBOX", by="preset 'Sales'")


def test_an_error_raised_in_a_worker_process_arrives_as_itself() -> None:
    """A process pool pickles the worker's exception back, as Celery and RQ do."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(_locked_in_a_worker, "ana")
        with pytest.raises(LabelLocked) as caught:
            future.result(timeout=120)

    assert whole(LabelLocked("ana", "INBOX", by="preset 'Sales'")) == whole(caught.value)
