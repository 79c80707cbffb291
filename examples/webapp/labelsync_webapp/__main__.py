"""``python -m labelsync_webapp``: serve the example on 127.0.0.1 over a synthetic tenant.

The first start creates the tenant (`labelsync.synthetic`) in the database;
later starts reuse it, and the worker first resumes any push a previous run
left unfinished.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from werkzeug.serving import make_server

from labelsync_webapp.app import Config, Webapp

DATABASE_ENV = "LABELSYNC_WEBAPP_DATABASE"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m labelsync_webapp",
        description="The labelsync example web application: admin settings, push jobs, Email tab.",
    )
    parser.add_argument(
        "--database",
        default=os.environ.get(DATABASE_ENV, "labelsync-webapp.db"),
        help=f"SQLite file, or a postgresql:// URL (default: ${DATABASE_ENV} or %(default)s)",
    )
    parser.add_argument(
        "--schema", default="labelsync", help="PostgreSQL schema of the tables (default: labelsync)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--tenant", default="demo", help="the tenant id the app serves")
    parser.add_argument(
        "--users", type=int, default=2_000, help="size of the synthetic tenant made on first start"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic tenant")
    parser.add_argument("--batch-size", type=int, default=100, help="Users per committed batch")
    parser.add_argument(
        "--batch-delay",
        type=float,
        default=0.0,
        help="seconds to pause after each batch, to watch a small push move",
    )
    return parser


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # leaves serve_forever, so the finally block shuts down cleanly


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted (Ctrl-C or SIGTERM); the worker stops after its current batch."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per progress poll
    config = Config(
        database=args.database,
        postgres_schema=args.schema,
        tenant_id=args.tenant,
        batch_size=args.batch_size,
        batch_delay=args.batch_delay,
    )
    webapp = Webapp(config)
    try:
        if webapp.ensure_tenant(users=args.users, seed=args.seed):
            print(f"created tenant {args.tenant!r} with {args.users} synthetic Users", flush=True)
        webapp.start()
        server = make_server(args.host, args.port, webapp.flask, threaded=True)
        signal.signal(signal.SIGTERM, _stop)
        print(f"serving on http://{args.host}:{server.server_port}/", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    finally:
        webapp.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
