"""What ``/proc`` says of a process (Linux): whether it runs, and when it started.

A process id alone is not an identity: once a process ends the kernel gives its id to a
later one (it wraps at ``pid_max``, 32768 by default, after as many processes and
threads). A pid file therefore records the start time beside the id, and a process
whose start time differs is another program, never to be signalled.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["is_running", "start_time"]


def _stat_fields(pid: int) -> list[str] | None:
    """Return the fields of ``/proc/<pid>/stat`` after the command name (field 3 onwards)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    return stat.rpartition(")")[2].split()


def start_time(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot; ``None`` if there is none.

    A zombie (ended, not reaped yet) still has its start time.
    """
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None and len(fields) > 19 else None


def is_running(pid: int) -> bool:
    """Whether process ``pid`` runs: it exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and bool(fields) and fields[0] != "Z"
