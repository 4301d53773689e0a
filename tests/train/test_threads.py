"""Threads per training: the usable cores (affinity, cgroup quota) divided among concurrent trainings."""

from __future__ import annotations

import os

import pytest
import torch

from layerlab.train import threads
from layerlab.train.threads import cgroup_cpu_limit, threads_for, usable_cores, use_threads


@pytest.mark.parametrize(
    ("concurrent", "cores", "expected"),
    [(1, 2, 2), (2, 2, 1), (3, 2, 1), (2, 16, 8), (3, 16, 5), (4, 16, 4), (0, 4, 4), (8, 1, 1)],
)
def test_threads_for_divides_the_cores_without_oversubscribing(concurrent, cores, expected):
    assert threads_for(concurrent, cores) == expected


def test_threads_for_defaults_to_the_usable_cores(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 6)
    assert (threads_for(1), threads_for(2), threads_for(4)) == (6, 3, 1)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_along_the_path_the_smallest_wins(tmp_path):
    proc = tmp_path / "cgroup"
    write(proc, "0::/lab/worker\n")
    write(tmp_path / "fs" / "cpu.max", "max 100000\n")
    write(tmp_path / "fs" / "lab" / "cpu.max", "300000 100000\n")
    write(tmp_path / "fs" / "lab" / "worker" / "cpu.max", "150000 100000\n")
    assert cgroup_cpu_limit(tmp_path / "fs", proc) == 1.5
    write(tmp_path / "fs" / "lab" / "worker" / "cpu.max", "max 100000\n")
    assert cgroup_cpu_limit(tmp_path / "fs", proc) == 3.0


def test_cgroup_v1_quota_and_no_quota(tmp_path):
    proc = tmp_path / "cgroup"
    write(proc, "4:memory:/x\n2:cpu,cpuacct:/\n")
    write(tmp_path / "fs" / "cpu,cpuacct" / "cpu.cfs_quota_us", "200000\n")
    write(tmp_path / "fs" / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_limit(tmp_path / "fs", proc) == 2.0
    write(tmp_path / "fs" / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    assert cgroup_cpu_limit(tmp_path / "fs", proc) is None
    assert cgroup_cpu_limit(tmp_path / "nothing", tmp_path / "missing") is None


def test_usable_cores_is_the_affinity_capped_by_the_quota_rounded_up(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: None)
    assert usable_cores() == 8  # the affinity, not the machine's 64
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 2.5)
    assert usable_cores() == 3
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 0.2)
    assert usable_cores() == 1


def test_use_threads_sets_torchs_intra_op_threads():
    before = torch.get_num_threads()
    try:
        assert use_threads(1) == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
