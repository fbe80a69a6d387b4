"""The local backend's pure parts (`hpc.local`): how many workers, and their CPUs."""

import os

import pytest

from hpc import local


def test_workers_get_disjoint_cpu_sets_of_cpus_per_task():
    usable = sorted(os.sched_getaffinity(0))
    assert local.workers_for(100, 1) == len(usable)
    assert local.workers_for(1, 1) == 1  # never more workers than runs
    assert local.workers_for(5, len(usable) * 2) == 1  # at least one, even when a run asks for more
    sets = local.cpu_sets(len(usable), 1)
    assert sorted(c for s in sets for c in s) == usable and all(len(s) == 1 for s in sets)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two usable CPUs")
def test_two_cpus_per_worker():
    usable = sorted(os.sched_getaffinity(0))
    workers = local.workers_for(10, 2)
    assert workers == len(usable) // 2
    assert local.cpu_sets(workers, 2) == [usable[i * 2 : i * 2 + 2] for i in range(workers)]
