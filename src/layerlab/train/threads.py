"""CPU threads for a training that shares the machine: usable cores divided among concurrent trainings.

torch's default (one intra-op thread per core, whatever else runs) oversubscribes the cores as soon
as two trainings run at once: OpenMP threads spin at every barrier while the other process holds
the core, and two runs together train slower than one alone. ``threads_for`` gives each of
``concurrent`` trainings an equal share of the cores this process may use (at least one thread);
``layerlab serve --workers N`` / ``layerlab worker`` apply it to every run whose config does not set
``train.num_threads``, and a DDP launcher calls it per rank with its local world size.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _quota(quota: str, period: str) -> float | None:
    """CPUs allowed by a quota/period pair (None: unlimited or unreadable)."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None  # "max": no quota
    return q / p if q > 0 and p > 0 else None


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (``cpu.max`` of cgroup v2, ``cpu.cfs_quota_us``
    of v1), the smallest along its path up to the root; None when there is none."""
    v2, v1 = "", ""
    for line in (_read(proc_cgroup) or "").splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    limits = []
    for folder in _ancestors(root, v2):
        fields = (_read(folder / "cpu.max") or "").split()
        if len(fields) == 2:
            limits.append(_quota(*fields))
    for base in (root / "cpu", root / "cpu,cpuacct"):
        for folder in _ancestors(base, v1):
            quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
            if quota is not None and period is not None:
                limits.append(_quota(quota, period))
    found = [limit for limit in limits if limit]
    return min(found) if found else None


def _ancestors(base: Path, path: str) -> list[Path]:
    """``base/a/b``, ``base/a``, ``base`` for the cgroup path ``/a/b`` (a container sees only ``/``)."""
    parts = [p for p in path.strip("/").split("/") if p and p != ".."]
    return [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity (not ``os.cpu_count()``, which counts the whole
    machine), capped by a cgroup CPU quota rounded up (a quota of 1.5 CPUs lets 2 threads run)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit:
        cores = min(cores, math.ceil(limit))
    return max(1, cores)


def threads_for(concurrent: int, cores: int | None = None) -> int:
    """Intra-op threads for one of ``concurrent`` trainings sharing ``cores`` (default: ``usable_cores()``):
    an equal share, rounded down so that together they never oversubscribe, and at least 1."""
    cores = usable_cores() if cores is None else cores
    return max(1, int(cores) // max(1, int(concurrent)))


def use_threads(threads: int) -> int:
    """Set torch's intra-op threads for the trainings that follow in this process; returns them.

    Only the intra-op pool is set: it can change at any time, whereas the inter-op pool (used by
    ``torch.jit.fork``, not by eager training) can be sized only once, before any parallel work.
    """
    import torch

    torch.set_num_threads(max(1, int(threads)))
    return torch.get_num_threads()
