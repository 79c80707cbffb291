"""How a `Coverage` (R22) looks in Jupyter: counts by status and by group, then the Users."""

from __future__ import annotations

from labelsync._display._html import block, escape, table
from labelsync._repr import html
from labelsync.coverage import Coverage, CoverageStatus

__all__ = ["coverage_html"]


@html.register(Coverage)
def coverage_html(coverage: Coverage) -> str:
    """The counts per status (overall and per group), then every User not plainly covered."""
    defaults = coverage.defaults.describe() if coverage.defaults else "never set"
    head = (
        f"<b>Coverage</b> of {escape(coverage.tenant_id)}: {len(coverage.rows)} Users; "
        f"defaults: {escape(defaults)}"
    )
    statuses = list(CoverageStatus)
    counts = coverage.counts()
    groups = coverage.by_group()
    summary = table(
        ("", *(status.phrase for status in statuses)),
        [
            ("all Users", *(counts[status] for status in statuses)),
            *((group, *(by[status] for status in statuses)) for group, by in groups.items()),
        ],
        len(groups) + 1,
    )
    shown = [
        row for row in coverage.rows if row.status is not CoverageStatus.COVERED or row.guessed
    ]
    users = table(
        ("user", "groups", "status", "detail"),
        (
            (row.user_id, ", ".join(sorted(row.groups)), row.status.phrase, row.detail)
            for row in shown
        ),
        len(shown),
    )
    parts = [f"<p>{head}</p>", summary]
    if shown:
        parts += ["<p>Users not covered, or with a role recognised by its name only:</p>", users]
    return block(parts)
