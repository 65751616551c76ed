"""Tasks of one process share model calls on a GPU (``xcloud.inference.core._predict``).

There is no GPU here, so the sharing is switched on for the CPU (``_coalesce``) and checked with
the real ``fine`` model: tasks waiting for the model hand their tiles to the task that gets it,
every task gets back its own tiles' probabilities, a failed call reaches every task in it, and
the cascade's masks do not change. ``benchmarks/gpu.py`` measures the speed on a GPU.
"""

from __future__ import annotations

import threading
import time

import dask
import numpy as np
import pytest
from conftest import S2_WL, count_calls, mirrored_chip

import xcloud  # noqa: F401
from xcloud.device import INFERENCE_LOCK
from xcloud.inference import core
from xcloud.inference.core import MaskJob
from xcloud.models import builtin

FINE = MaskJob("fine", ("blue", "green", "red", "nir"), S2_WL, "l2a", device="cpu")


@pytest.fixture
def shared(monkeypatch):
    """Sharing switched on for the CPU; counts the model calls and their batch sizes."""
    monkeypatch.setattr(core, "_coalesce", lambda device: True)
    return count_calls(monkeypatch, builtin.FinePredictor, "predict")


def _tiles(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.02, 0.6, (n, 4, 64, 64)).astype(np.float32)


def _run_waiting(jobs_tiles, n_pending: int):
    """Start one thread per ``(job, tiles)`` while the model lock is held; release it once
    ``n_pending`` tile sets wait, so the first thread to get it finds the others queued."""
    results: dict[int, object] = {}

    def work(i, job, tiles):
        try:
            results[i] = core._predict(job, tiles)
        except Exception as err:  # noqa: BLE001 - handed to the test
            results[i] = err

    threads = [
        threading.Thread(target=work, args=(i, job, t)) for i, (job, t) in enumerate(jobs_tiles)
    ]
    with INFERENCE_LOCK:
        for th in threads:
            th.start()
        deadline = time.monotonic() + 30
        while sum(len(v) for v in core._PENDING.values()) < n_pending:
            assert time.monotonic() < deadline, "the tasks never queued their tiles"
            time.sleep(0.01)
    for th in threads:
        th.join(60)
    return results


def test_waiting_tasks_share_one_call_and_get_their_own_tiles_back(shared):
    sets = [_tiles(n, seed) for seed, n in enumerate((1, 3, 2, 1))]
    alone = [core._run_model(FINE, t, "cpu") for t in sets]
    shared.clear()
    results = _run_waiting([(FINE, t) for t in sets], n_pending=4)
    assert shared == [7]  # one call, all 7 tiles (cap 16)
    for i, ref in enumerate(alone):
        assert results[i].shape == ref.shape
        np.testing.assert_allclose(results[i], ref, atol=1e-5)
    assert core._PENDING[FINE] == []


def test_a_call_takes_at_most_the_batch_of_tiles(shared):
    job = MaskJob(FINE.model, FINE.bands, FINE.wavelengths, FINE.level, "cpu", batch_size=4)
    sets = [_tiles(2, seed) for seed in range(4)]
    results = _run_waiting([(job, t) for t in sets], n_pending=4)
    assert shared == [4, 4]  # two calls of two sets each
    assert all(results[i].shape == (2, 4, 64, 64) for i in range(4))


def test_other_jobs_tiles_wait_for_their_own_call(shared):
    l1c = MaskJob(FINE.model, FINE.bands, FINE.wavelengths, "l1c", "cpu")
    results = _run_waiting([(FINE, _tiles(2, 0)), (l1c, _tiles(3, 1))], n_pending=2)
    assert sorted(shared) == [2, 3]
    assert results[0].shape[0] == 2 and results[1].shape[0] == 3


def test_a_failed_shared_call_reaches_every_task_in_it(shared, monkeypatch):
    def broken(self, x, **kw):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(builtin.FinePredictor, "predict", broken)
    results = _run_waiting([(FINE, _tiles(1, s)) for s in range(3)], n_pending=3)
    assert all(isinstance(r, RuntimeError) and "out of memory" in str(r) for r in results.values())
    assert core._PENDING[FINE] == []


def test_cascade_masks_unchanged_when_units_share_calls(oncloudn_chip, shared, monkeypatch):
    ds = mirrored_chip(oncloudn_chip, 4, 256)  # 1024 x 1024 px: 16 one-tile units
    with dask.config.set(scheduler="threads", num_workers=4):
        off_shared = ds.cloud.mask("cascade", fine="fine", routing=False, device="cpu").values
        casc_shared = ds.cloud.mask("cascade", fine="fine", device="cpu").values
    n_shared = len(shared)
    monkeypatch.setattr(core, "_coalesce", lambda device: False)  # each task its own calls
    fine = ds.cloud.mask("fine", device="cpu").values
    casc = ds.cloud.mask("cascade", fine="fine", device="cpu").values
    assert n_shared > 0  # (how many units shared a call depends on the threads' timing)
    assert (off_shared == fine).mean() >= 0.9999
    assert (casc_shared == casc).mean() >= 0.9999
