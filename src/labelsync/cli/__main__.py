"""`python -m labelsync.cli` runs the `labelsync` command."""

from labelsync.cli import run

run()
