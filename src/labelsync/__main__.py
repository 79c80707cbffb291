"""`python -m labelsync` runs the `labelsync` command."""

from labelsync.cli import main

main()
