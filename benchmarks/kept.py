"""Sections of docs/performance.md measured by their own benchmark and kept by a full run.

`python -m benchmarks` renders the whole page afresh (`benchmarks.report.markdown`);
a benchmark that runs on its own (`benchmarks.sqlite_directory`,
`benchmarks.audience_push`) writes its section between two HTML comments, and
`carry` puts every such section of the old page into the new one, so a full run
drops none. A new benchmark of its own adds its markers to `KEPT`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["KEPT", "carry", "carry_one", "markers", "sections", "write_page"]


def markers(name: str) -> tuple[str, str]:
    """The start and end comments of the kept section `name`."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


KEPT: tuple[str, ...] = ("directory-sync", "audience-push")
"""The kept sections, in the order a full run puts them before "## Reproduce"."""


def sections(page: str, names: Sequence[str] = KEPT) -> dict[str, str]:
    """The kept sections of `page` by name, markers included; absent ones left out."""
    found: dict[str, str] = {}
    for name in names:
        start, end = markers(name)
        if start in page and end in page:
            found[name] = start + page.split(start, 1)[1].split(end, 1)[0] + end
    return found


def carry_one(old_page: str, new_page: str, name: str) -> str:
    """`new_page` with the section `name` of `old_page` put before "## Reproduce", unless
    `old_page` lacks it or `new_page` has it already."""
    start, _ = markers(name)
    text = sections(old_page, [name]).get(name)
    if text is None or start in new_page:
        return new_page
    head, marker, tail = new_page.partition("## Reproduce")
    return head + text + "\n\n" + marker + tail if marker else new_page + "\n" + text + "\n"


def carry(old_page: str, new_page: str, names: Sequence[str] = KEPT) -> str:
    """`new_page` with every kept section of `old_page` that it lacks, in `names`' order."""
    for name in names:
        new_page = carry_one(old_page, new_page, name)
    return new_page


def write_page(text: str, out: Path) -> None:
    """Write the full run's page `text` to `out`, keeping the kept sections `out` holds."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        text = carry(out.read_text(encoding="utf-8"), text)
    out.write_text(text, encoding="utf-8")
