"""A real LocalCluster: same mask as the threaded scheduler, one model load per worker."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_dataset

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _n_cached():
    from xcloud.models import _registry

    return len([k for k in _registry._CACHE if k[0] == "ukis-csmask"])


def test_cluster_matches_threaded_and_loads_model_once_per_worker(client):
    ds = make_dataset(448, 224, seed=4, chunks={"y": 224, "x": 224})
    m = ds.cloud.mask("ukis-csmask")
    threaded = m.compute(scheduler="threads")
    on_cluster = client.compute(m).result()
    np.testing.assert_array_equal(on_cluster.values, threaded.values)
    # a second, different computation reuses the loaded models
    client.compute(ds.isel(x=slice(0, 112)).cloud.mask("ukis-csmask")).result()
    counts = client.run(_n_cached)
    assert len(counts) == 2
    assert all(n <= 1 for n in counts.values())
    assert sum(counts.values()) >= 1


def test_routed_cascade_on_the_cluster(client):
    """The cascade's routing pass and its hand-built graph run on the workers, giving the
    threaded scheduler's mask."""
    from xcloud.data import open_sample

    ds = open_sample(chunks=256)
    threaded = ds.cloud.mask(fine="fine").compute(scheduler="threads")
    m = ds.cloud.mask(fine="fine")  # routing computed on the cluster (the default scheduler now)
    np.testing.assert_array_equal(client.compute(m).result().values, threaded.values)
    assert m.attrs["xcloud_model"] == "cascade"
