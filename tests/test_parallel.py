"""The process-pool map every packaging step fans out through."""

import os

import pytest

from synfashion.parallel import parallel_map


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
