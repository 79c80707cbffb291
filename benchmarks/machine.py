"""What the numbers were measured on: CPU, cores, memory, Python, SQLite, load and date."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sqlite3
import sys

from attrs import frozen


@frozen
class Machine:
    """The facts about the host that a reader needs to compare numbers across runs."""

    cpu: str
    cores: int
    memory_gb: float
    python: str
    sqlite: str
    system: str
    load: str
    date: str


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def load_average() -> str:
    """The 1-minute load average, or "n/a": other work on the host skews wall-clock times."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


def this_machine() -> Machine:
    """Describe the host now."""
    return Machine(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 1,
        memory_gb=round(_memory_gb(), 1),
        python=f"{platform.python_implementation()} {sys.version.split()[0]}",
        sqlite=sqlite3.sqlite_version,
        system=f"{platform.system()} {platform.release()}",
        load=load_average(),
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
