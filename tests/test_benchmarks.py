"""The benchmarks' floors reach labelsync's result, so their timings compare like with like.

`nox -s bench` checks this too before it times anything; here it is checked on
every test run, so a change to labelsync or to a floor cannot leave them apart.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from benchmarks import kept, sqlite_floor
from benchmarks.audience_push import AUDIENCES, floor_path, grouped_tenant
from benchmarks.audience_push import DEFAULTS as AUDIENCE_DEFAULTS
from benchmarks.audience_push import FLOOR_JOB as AUDIENCE_FLOOR_JOB
from benchmarks.audience_push import prepare as audience_prepare
from benchmarks.bench_postgres import check_same as check_same_on_postgres
from benchmarks.policy_push import with_user_choices
from benchmarks.sqlite_push import FLOOR_JOB, prepare
from benchmarks.state import State, check_equal, labelsync_state

from labelsync import Defaults, LabelSync, PushMode
from labelsync.adapters.clock import SystemClock
from labelsync.adapters.sqlite import SqliteStore
from labelsync.synthetic import ADMIN_ID, synthetic_tenant
from postgres_fixtures import postgres_dsn

ROOT = Path(__file__).resolve().parent.parent

# Inbox checked and Sent unchecked: the push both selects and deselects.
MIXED = Defaults(inbox=True, sent=False)


def labelsync_run(path: Path, job_id: str) -> State:
    """labelsync runs its started push `job_id` in `path`; what it leaves, provenance included."""
    with SqliteStore(path) as store:
        service = LabelSync(store=store, clock=SystemClock())
        service.run_push(job_id, batch_size=500)
        return labelsync_state(service, "bench", job_id, keep=True, provenance=True)


def floor_run(path: Path, job_id: str, *, groups: frozenset[str] | None = None) -> State:
    """The floor runs its pending push `job_id` in `path` (first narrowed to `groups`, if
    given, R20); what it leaves."""
    with contextlib.closing(sqlite_floor.connect(path)) as conn:
        if groups is not None:
            sqlite_floor.narrow(conn, job_id, groups)
        sqlite_floor.push(conn, job_id, 500, "2024-05-01T00:00:00+00:00")
        return sqlite_floor.final_state(conn, job_id, keep=True)


@pytest.mark.parametrize("defaults", [MIXED, Defaults(inbox=True, sent=True)], ids=str)
def test_the_sqlite_floor_leaves_every_user_and_count_as_labelsync_does(
    tmp_path: Path, defaults: Defaults
) -> None:
    """R3, R4, R5, R7, R9: same selections, versions, changes and skips, User by User."""
    prepared = prepare(
        synthetic_tenant(1_500, seed=5, tenant_id="bench"), tmp_path / "b.db", defaults
    )
    ours = labelsync_run(prepared.path, prepared.job_id)
    floor = floor_run(prepared.floor_path, FLOOR_JOB)
    check_equal(ours, floor, "SQLite")
    assert 1_500 == floor.processed
    changed, selected, deselected, _, _ = floor.counts
    assert (changed > 0, selected > 0) == (True, True)
    assert (deselected > 0) is not defaults.sent


def test_the_sqlite_floor_writes_nothing_once_a_newer_push_started(tmp_path: Path) -> None:
    """The fence (R10): a superseded job stops before its batch; the Users stay as they were."""
    prepared = prepare(synthetic_tenant(600, seed=5, tenant_id="bench"), tmp_path / "b.db", MIXED)
    conn = sqlite_floor.connect(prepared.floor_path)
    try:
        before = list(sqlite_floor.users_after(conn))
        conn.execute("UPDATE tenants SET current_job = 'newer'")
        with pytest.raises(sqlite_floor.Superseded):
            sqlite_floor.push(conn, FLOOR_JOB, 500, "2024-05-01T00:00:00+00:00")
        assert before == list(sqlite_floor.users_after(conn))
        assert (0, 0) == conn.execute("SELECT cursor, processed FROM jobs").fetchone()
    finally:
        conn.close()


@pytest.mark.postgres
def test_the_postgres_floor_leaves_every_user_and_count_as_labelsync_does() -> None:
    """R3, R4, R5, R7, R9 on PostgreSQL, both run as the benchmark runs them (child processes)."""
    state = check_same_on_postgres(postgres_dsn(), users=1_200)
    assert 1_200 == state.processed


def test_the_sqlite_floor_keeps_user_choices_and_provenance_as_labelsync_does(
    tmp_path: Path,
) -> None:
    """R15, R16: a KEEP_USER_CHOICES push leaves every User's selection, version and
    provenance as the floor does, and both keep the same labels."""
    tenant = with_user_choices(synthetic_tenant(1_500, seed=5, tenant_id="bench"))
    prepared = prepare(tenant, tmp_path / "k.db", MIXED, PushMode.KEEP_USER_CHOICES)
    ours = labelsync_run(prepared.path, prepared.job_id)
    floor = floor_run(prepared.floor_path, FLOOR_JOB)
    check_equal(ours, floor, "SQLite, KEEP_USER_CHOICES")
    assert ours.kept > 0
    assert ours.users is not None
    assert any("USER:-" in str(user[3:]) for user in ours.users)
    assert any("PUSH:job" in str(user[3:]) for user in ours.users)


def test_a_full_render_keeps_every_section_measured_on_its_own(tmp_path: Path) -> None:
    """`python -m benchmarks` writes a fresh page (`_write`): every section of the committed
    docs/performance.md that the full run does not render is carried over, none dropped."""
    committed = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    own = kept.sections(committed)
    assert set(kept.KEPT) == set(own)  # each benchmark of its own has its markers on the page
    fresh = committed
    for text in own.values():  # what a full render writes: none of those sections
        fresh = fresh.replace(text, "")
    out = tmp_path / "performance.md"
    out.write_text(committed, encoding="utf-8")

    kept.write_page(fresh, out)

    written = out.read_text(encoding="utf-8")
    assert _headings(committed) == _headings(written)
    assert own == kept.sections(written)
    assert written == kept.carry(written, written)  # a second run changes nothing


def test_every_section_of_the_page_is_rendered_by_the_full_run_or_kept() -> None:
    """A section added to docs/performance.md by hand, without markers, would be dropped by
    the next full run: each heading is in the renderer's code or inside a kept section."""
    committed = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    outside = committed
    for text in kept.sections(committed).values():
        outside = outside.replace(text, "")
    rendered = "".join(
        (ROOT / "benchmarks" / name).read_text(encoding="utf-8")
        for name in ("report.py", "bench_postgres.py")
    )
    # A heading is written as a string of its own, or as a line of a longer text.
    assert [] == [
        h for h in _headings(outside) if f'"{h}' not in rendered and f"\n{h}\n" not in rendered
    ]


def _headings(page: str) -> list[str]:
    return [line for line in page.splitlines() if line.startswith("#") and " " in line]


@pytest.mark.parametrize("group", ["sales", "east"])
def test_the_sqlite_floor_pushes_to_an_audience_as_labelsync_does(
    tmp_path: Path, group: str
) -> None:
    """R20 with R3-R7, R15: a push to a spread (`sales`) or clustered (`east`) 10% group
    leaves every User, provenance included, and counts as labelsync's does; only its
    members are touched and the floor's tenant keeps its checkboxes."""
    tenant = grouped_tenant(3_000)
    base = tmp_path / "a.db"
    audience_prepare(tenant, base)
    with SqliteStore(base) as store:
        service = LabelSync(store=store, clock=SystemClock())
        report = service.push(
            "bench", actor_id=ADMIN_ID, defaults=AUDIENCE_DEFAULTS, audience=AUDIENCES[group]
        )
        ours = labelsync_state(service, "bench", report.job.id, keep=True, provenance=True)
    floor = floor_run(floor_path(base), AUDIENCE_FLOOR_JOB, groups=frozenset({group}))
    with contextlib.closing(sqlite_floor.connect(floor_path(base))) as conn:
        checkboxes = conn.execute("SELECT defaults_inbox, defaults_sent FROM tenants").fetchone()
    check_equal(ours, floor, f"SQLite, push to {group}")
    assert (300, (None, None)) == (floor.processed, checkboxes)
    assert floor.users is not None
    touched = [user for user in floor.users if "job" in str(user[3:])]
    assert 0 < len(touched) <= 300
