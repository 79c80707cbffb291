"""A tenant in memory: labelsync's values against the floor's plain dicts of the same Users.

A host builds a tenant from its own data: every User, mailbox, label and
selection parsed afresh, nothing shared that the data did not share. This
benchmark does the same from the synthetic roster: each User is rebuilt through
the public constructors from fresh copies of its strings (``Label``,
``Mailbox``, ``LabelSet``, ``User``, then one ``Tenant``). The floor holds the
same Users as the core benchmark's floor does (`benchmarks.core.FloorUser`: id,
role -> label id dict, selection frozenset, version), built from the same fresh
strings. Each is built in a fresh child process and measured as the growth of
its resident set (VmRSS) after a full collection: what the process really holds,
allocator overhead included.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from attrs import frozen

from benchmarks.core import FloorUser
from labelsync import Label, LabelSet, Mailbox, Tenant, User
from labelsync.synthetic import synthetic_users

SEED = 1


def _fresh(text: str) -> str:
    """A new string object equal to `text`, as parsing outside data gives."""
    return text.encode().decode()


def host_users(users: int) -> Iterator[User]:
    """The synthetic Users, each rebuilt from fresh values through the public constructors."""
    for user in synthetic_users(users, seed=SEED):
        box = user.mailbox
        mailbox = None
        if box is not None:
            mailbox = Mailbox(
                provider=box.provider,
                address=_fresh(box.address),
                labels=[
                    Label(id=_fresh(label.id), name=_fresh(label.name), system=label.system)
                    for label in box.labels
                ],
            )
        yield User(
            id=_fresh(user.id),
            email=_fresh(user.email),
            permissions=set(user.permissions),
            mailbox=mailbox,
            synced=LabelSet([_fresh(label_id) for label_id in user.synced.ids]),
            version=user.version,
        )


def floor_users(users: int) -> Iterator[FloorUser]:
    """The same Users as the floor's dicts, from fresh strings."""
    for user in synthetic_users(users, seed=SEED):
        roles = None
        if user.mailbox is not None:
            roles = {
                label.system.value: _fresh(label.id)
                for label in user.mailbox.labels
                if label.system is not None
            }
        yield FloorUser(
            id=_fresh(user.id),
            roles=roles,
            synced=frozenset(_fresh(label_id) for label_id in user.synced.ids),
            version=user.version,
        )


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def _child(kind: str, users: int) -> int:
    """Build one representation of `users` Users; return the KiB it added to the process."""
    gc.collect()
    before = _rss_kib()
    held: object
    if kind == "labelsync":
        held = Tenant(id="bench", name="Bench Corp", users=host_users(users))
    else:
        held = list(floor_users(users))
    gc.collect()
    grown = _rss_kib() - before
    del held
    return grown


@frozen
class MemoryResult:
    """KiB each representation of `users` Users adds to a fresh process."""

    users: int
    labelsync_kib: int
    floor_kib: int

    @property
    def ratio(self) -> float:
        """labelsync / floor."""
        return self.labelsync_kib / self.floor_kib

    def per_user(self, kib: int) -> float:
        """Bytes per User."""
        return kib * 1024 / self.users


def bench_memory(users: int) -> MemoryResult:
    """Build labelsync's tenant and the floor's dicts, each in its own child, side by side."""
    children = {
        kind: subprocess.Popen(
            [sys.executable, "-m", "benchmarks.memory", kind, str(users)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        for kind in ("labelsync", "floor")
    }
    grown: dict[str, int] = {}
    for kind, child in children.items():
        out, _ = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"the {kind} memory child failed (exit {child.returncode})")
        grown[kind] = int(json.loads(out.strip().splitlines()[-1])["kib"])
    return MemoryResult(users=users, labelsync_kib=grown["labelsync"], floor_kib=grown["floor"])


def main(argv: list[str] | None = None) -> None:
    """The child: build one representation and print the KiB it took as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory")
    parser.add_argument("kind", choices=["labelsync", "floor"])
    parser.add_argument("users", type=int)
    args = parser.parse_args(argv)
    print(json.dumps({"kib": _child(args.kind, args.users)}))


if __name__ == "__main__":
    main()
