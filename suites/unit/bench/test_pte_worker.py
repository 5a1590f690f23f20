"""The bench worker runs the ``.pte`` with as many XNNPACK threads as libtorch has."""

from __future__ import annotations

import torch


def test_executorch_pool_follows_torch_threads():
    from executorch.extension.pybindings import portable_lib

    from sam3spec.bench.pte_worker import match_executorch_threads

    before_torch, before_pool = torch.get_num_threads(), portable_lib._threadpool_get_thread_count()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            assert match_executorch_threads() == threads
            assert portable_lib._threadpool_get_thread_count() == threads
    finally:
        torch.set_num_threads(before_torch)
        portable_lib._unsafe_reset_threadpool(before_pool)
