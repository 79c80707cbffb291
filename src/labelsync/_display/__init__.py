"""The display layer: how labelsync values look in Jupyter, registered by type (B1).

Importing it registers a renderer with `labelsync._repr.html` for each core
value (`Tenant`, `Changes`, `Coverage`); `labelsync.whatif` registers its own for
`Comparison` with the same table helpers. Nothing in the core imports this
package: ``import labelsync`` does, once.
"""

from __future__ import annotations

from labelsync._display._coverage import coverage_html
from labelsync._display._html import MAX_ROWS, block, changes_html, escape, table, tenant_html

__all__ = ["MAX_ROWS", "block", "changes_html", "coverage_html", "escape", "table", "tenant_html"]
