"""The one hook between the core's values and how a notebook shows them (B1).

`html` is a `functools.singledispatch` function without a renderer of its own.
The values' ``_repr_html_`` methods call it; the `labelsync._display` layer,
and `labelsync.whatif` for its `Comparison`, register one renderer per type.
So the core never imports display code, and a layer above gives a type its face.
"""

from __future__ import annotations

import functools

__all__ = ["html"]


@functools.singledispatch
def html(value: object) -> str | None:
    """The HTML a notebook shows for `value`; None (Jupyter then shows its repr) if unregistered."""
    return None
