"""The background worker: a thread that runs push jobs found in the job table, outside any request.

The request only *starts* a push (`LabelSync.start_push` persists the job); this
worker finds every unfinished job (`LabelSync.jobs`) and runs it with
`LabelSync.run_push`, which resumes after the last committed batch. So a push
that was running when the process died is finished by the next process's
worker: restart-safety comes from the job table, not from memory.

The ``--8<--`` comments mark the parts that docs/howto/web-app.md shows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from labelsync import JobStatus, JobSuperseded, LabelSync, PushJob
from labelsync_webapp.stores import ClosableStore

__all__ = ["PushWorker"]

log = logging.getLogger(__name__)

AfterBatch = Callable[[PushJob], None]
"""Called with the job after each committed batch (a demo's slow-down, a test's gate)."""


class _Stopping(Exception):
    """Raised from the progress callback to leave `run_push` between two batches."""


class PushWorker:
    """Runs the tenant's unfinished push jobs, one at a time, in a thread of its own.

    `open_store` opens the worker's own store: with SQLite that is a connection
    of its own, so a batch being written never makes page requests wait for the
    request threads' connection (WAL lets them read meanwhile). `wake()` tells
    it a job was just started; it also looks every `poll_interval` seconds, so
    jobs started by another process are picked up too.
    """

    def __init__(
        self,
        *,
        open_service: Callable[[], tuple[LabelSync, ClosableStore]],
        tenant_id: str,
        batch_size: int,
        after_batch: AfterBatch | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self._open_service = open_service
        self._tenant_id = tenant_id
        self._batch_size = batch_size
        self._after_batch = after_batch
        self._poll_interval = poll_interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="labelsync-push-worker", daemon=True)

    def start(self) -> None:
        """Start the thread; it first resumes whatever the job table says is unfinished."""
        self._thread.start()

    def wake(self) -> None:
        """A push was just started: look at the job table now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the batch in progress (its checkpoint is committed); wait for the thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # --8<-- [start:loop]
    def _run(self) -> None:
        service, store = self._open_service()
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                job = self._next_job(service)
                if job is None:
                    self._wake.wait(self._poll_interval)
                    continue
                self._run_job(service, job)
        finally:
            store.close()

    def _next_job(self, service: LabelSync) -> PushJob | None:
        """The tenant's unfinished job, if any (a newer push supersedes older ones: R10)."""
        try:
            jobs = service.jobs(self._tenant_id)
        except Exception:
            log.exception("cannot read the job table; trying again in %ss", self._poll_interval)
            self._stopping.wait(self._poll_interval)
            return None
        unfinished = [job for job in jobs if job.status in (JobStatus.PENDING, JobStatus.RUNNING)]
        return unfinished[0] if unfinished else None

    def _run_job(self, service: LabelSync, job: PushJob) -> None:
        log.info("running push %s (%s/%s done)", job.id, job.processed, job.total)
        try:
            report = service.run_push(job.id, batch_size=self._batch_size, progress=self._progress)
        except JobSuperseded:
            log.info("push %s was superseded by a newer one", job.id)
        except _Stopping:
            log.info("stopped during push %s; the next start resumes it", job.id)
        except Exception:
            # Logged, not fatal: the job stays resumable and is tried again after a pause.
            log.exception("push %s failed; trying again in %ss", job.id, self._poll_interval)
            self._stopping.wait(self._poll_interval)
        else:
            log.info("%s", report)

    # --8<-- [end:loop]

    def _progress(self, job: PushJob) -> None:
        if self._after_batch is not None:
            self._after_batch(job)
        if self._stopping.is_set():
            raise _Stopping
