"""Shared test setup: hypothesis profiles, chosen with HYPOTHESIS_PROFILE (default, ci, dev)."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("default", settings())
settings.register_profile("ci", max_examples=300, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=20)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
