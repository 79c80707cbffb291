"""A real Dovecot IMAP server for the IMAP tests, started by the tests themselves.

`dovecot_server()` runs ``scripts/dovecot-test-server.sh start`` once per test
run with a throwaway directory and port of its own, and stops it at the end.
A server already started by hand (``eval "$(bash scripts/dovecot-test-server.sh
start)"`` exports LABELSYNC_IMAP_HOST) is used as it is. Without Dovecot
installed every IMAP test is skipped, naming the install command; with
LABELSYNC_IMAP_REQUIRED=1 (CI) it fails instead, so a missing or broken server
can never pass as skipped tests.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

REQUIRED_VARIABLE = "LABELSYNC_IMAP_REQUIRED"
SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "dovecot-test-server.sh"
INSTALL = "apt-get install dovecot-imapd (or run scripts/dovecot-test-server.sh start as root)"


@attrs.frozen
class Dovecot:
    """Where the test server listens, and a TLS context that trusts its self-signed certificate."""

    host: str
    port: int
    ssl_port: int
    ca_file: str
    password: str

    def context(self) -> ssl.SSLContext:
        """A fresh context trusting only the test server's certificate."""
        return ssl.create_default_context(cafile=self.ca_file)


def _unavailable(problem: str) -> None:
    if os.environ.get(REQUIRED_VARIABLE):
        pytest.fail(f"{problem} ({REQUIRED_VARIABLE} is set)")
    pytest.skip(problem)


def _from_exports(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        found[name] = value
    return found


def _server(values: dict[str, str]) -> Dovecot:
    return Dovecot(
        host=values["LABELSYNC_IMAP_HOST"],
        port=int(values["LABELSYNC_IMAP_PORT"]),
        ssl_port=int(values["LABELSYNC_IMAP_SSL_PORT"]),
        ca_file=values["LABELSYNC_IMAP_CA"],
        password=values["LABELSYNC_IMAP_PASSWORD"],
    )


def dovecot_server() -> Iterator[Dovecot]:
    """The body of the session fixture: a running server, stopped afterwards if started here."""
    if os.environ.get("LABELSYNC_IMAP_HOST"):
        yield _server(dict(os.environ))
        return
    if shutil.which("dovecot") is None:
        _unavailable(f"Dovecot is not installed; install it: {INSTALL}")
    # The mail processes run as another user when the tests run as root, so
    # every directory on the way to the mail must be open to them.
    parent = tempfile.mkdtemp(prefix="labelsync-dovecot-")
    os.chmod(parent, 0o755)
    env = {**os.environ, "LABELSYNC_IMAP_DIR": os.path.join(parent, "server")}
    started = subprocess.run(
        ["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, check=False
    )
    try:
        if started.returncode != 0:
            _unavailable(f"Dovecot did not start: {started.stderr.strip()[-2000:]}")
        yield _server(_from_exports(started.stdout))
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, check=False)
        shutil.rmtree(parent, ignore_errors=True)
