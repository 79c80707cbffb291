"""A reference host application for labelsync: the default synced labels page and the Email tab.

`Webapp` wires labelsync's `LabelSync` over a SQLite (or PostgreSQL) store, a
background `PushWorker` that runs and resumes push jobs from the job table,
and a Flask app with the pages. `python -m labelsync_webapp` serves it on
127.0.0.1 with a synthetic tenant.
"""

from __future__ import annotations

from labelsync_webapp.app import Config, Webapp, status_for
from labelsync_webapp.worker import PushWorker

__all__ = ["Config", "PushWorker", "Webapp", "status_for"]
