"""The process-pool map every packaging step fans out through."""

import os

import pytest

from synfashion.parallel import parallel_map, worker_pool


def _square_and_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


@pytest.mark.parametrize("largest_first", [False, True])
def test_results_come_back_in_input_order_whatever_runs_first(largest_first):
    items = list(range(23))
    weights = [(i * 7919) % 13 for i in items]  # heaviest items scattered through the list
    got = list(parallel_map(_square_and_pid, items, workers=2, chunksize=1, progress=False, weights=weights,
                            largest_first=largest_first))
    assert [r for r, _ in got] == [i * i for i in items]
    assert os.getpid() not in {pid for _, pid in got}  # the work ran in the pool


def test_one_worker_runs_in_process():
    got = list(parallel_map(_square_and_pid, [1, 2, 3], workers=1, progress=False, weights=[1, 5, 2],
                            largest_first=True))
    assert got == [(1, os.getpid()), (4, os.getpid()), (9, os.getpid())]


def test_a_shared_pool_serves_several_maps_with_the_same_workers():
    with worker_pool(2) as pool:
        first = list(parallel_map(_square_and_pid, list(range(8)), workers=2, chunksize=1, progress=False, pool=pool))
        second = list(parallel_map(_square_and_pid, list(range(8, 16)), workers=2, chunksize=1, progress=False,
                                   pool=pool, weights=list(range(8)), largest_first=True))
    assert [r for r, _ in first + second] == [i * i for i in range(16)]
    pids = {pid for _, pid in first + second}
    assert len(pids) <= 2 and os.getpid() not in pids  # both maps ran in the same two forked workers
    with worker_pool(1) as none:
        assert none is None  # one worker: everything runs in this process


@pytest.mark.parametrize("workers", [1, 2])
def test_the_bar_ends_full_when_the_caller_stops_at_the_last_item(monkeypatch, workers):
    import synfashion.parallel as parallel

    bars = []

    def recording_bar(enabled=True, **kwargs):
        bars.append(parallel.Progress(disable=True))
        return bars[-1]

    monkeypatch.setattr(parallel, "progress_bar", recording_bar)
    items = list(range(10))
    # zip stops at the shorter first iterable and never resumes the map after its last item
    pairs = list(zip(items, parallel_map(_square_and_pid, items, workers=workers, chunksize=3, weights=[5] * 10)))
    assert len(pairs) == 10
    task = bars[0].tasks[0]
    assert task.completed == task.total == 50
