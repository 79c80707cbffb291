"""`python -m labelsync` runs the `labelsync` command."""

from labelsync.cli import run

run()
