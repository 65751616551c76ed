"""The cascade (``model="cascade"``): routing, pruning, nodata cells, the safety ring and
bit-for-bit equivalence with ``model="fine"`` when routing is off. Real coarse + fine weights."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from conftest import S2_BANDS, S2_WL

import xcloud
from xcloud.errors import ParameterError
from xcloud.inference.cascade import CascadeJob, compute_overview, route, run_cascade
from xcloud.inference.core import MaskJob, run_mask

FINE = MaskJob("fine", ("blue", "green", "red", "nir"), S2_WL, "l2a", device="cpu")


def _raise(*args, **kwargs):
    raise AssertionError("something was computed")


class ReadError(RuntimeError):
    pass


def _explode(block):
    raise ReadError("a skipped chunk was read")


@pytest.fixture(scope="module")
def real512(oncloudn_chip) -> np.ndarray:
    """(4, 512, 512) float reflectance: the real jaag chip and its mirror images."""
    x = np.stack([oncloudn_chip[b].values for b in S2_BANDS]).astype(np.float32) / 10000
    top = np.concatenate([x, x[..., ::-1]], axis=-1)
    return np.concatenate([top, top[..., ::-1, :]], axis=-2)


def _dataset(x: np.ndarray, chunks=None) -> xr.Dataset:
    ny, nx = x.shape[-2:]
    coords = {"y": 5e6 - 10.0 * np.arange(ny), "x": 3e5 + 10.0 * np.arange(nx)}
    ds = xr.Dataset(
        {b: (("y", "x"), x[i]) for i, b in enumerate(S2_BANDS)},
        coords=coords,
        attrs={"platform": "sentinel-2a", "processing:level": "L2A"},
    )
    return ds.chunk(chunks) if chunks else ds


@pytest.mark.parametrize("chunks", [None, {"y": 256, "x": 256}, {"y": 512, "x": 256}])
def test_routing_off_equals_fine_bit_for_bit(real512, chunks):
    ds = _dataset(real512, chunks)
    fine = ds.cloud.mask("fine").values
    off = ds.cloud.mask("cascade", fine="fine", routing=False).values
    np.testing.assert_array_equal(off, fine)
    thr1 = ds.cloud.mask(
        "cascade", fine="fine", cascade=xcloud.CascadeOptions(route_threshold=1.0)
    ).values
    np.testing.assert_array_equal(thr1, fine)
    assert set(np.unique(fine)) - {0, 1, 2, 3} == set()  # a real mask, not all nodata


def test_routing_off_probabilities_equal_fine(real512):
    ds = _dataset(real512, {"y": 256, "x": 256})
    p_fine = ds.cloud.mask("fine", probabilities=True).values
    p_off = ds.cloud.mask("cascade", fine="fine", routing=False, probabilities=True).values
    np.testing.assert_array_equal(p_off, p_fine)


def _half_exploding(real512: np.ndarray, right: str = "nodata"):
    """A 512 x 1024 cube: the real scene on the left, blocks that raise if read on the right,
    and an overview that says the right half holds no data, or calm dark water (which the
    coarse model calls cloudless with p > 0.99)."""
    left = da.from_array(real512, chunks=(4, 256, 256))
    exploding = da.zeros((4, 512, 512), chunks=(4, 256, 256), dtype=np.float32).map_blocks(
        _explode, dtype=np.float32
    )
    x = da.concatenate([left, exploding], axis=-1)
    ov = compute_overview(real512, 4)[:4]
    if right == "nodata":
        return x, np.concatenate([ov, np.full_like(ov, np.nan)], axis=-1)
    # the overview is real over the first unit (256 px) and calm water over the rest
    rng = np.random.default_rng(0)
    water = np.array([0.05, 0.04, 0.02, 0.01], np.float32)[:, None, None]
    other = water * (1 + 0.05 * rng.standard_normal((4, 128, 192))).astype(np.float32)
    return x, np.concatenate([ov[..., :64], other], axis=-1)


def test_skipped_units_are_never_read(real512):
    x, ov = _half_exploding(real512)
    m, routing = run_cascade(x, CascadeJob(FINE, ring=0), overview=ov)
    out = m.compute()  # the right half's blocks raise if anything reads them
    assert (out[:, 512:] == 255).all()
    assert not routing.unit_fine[:, 2:].any() and routing.unit_fine[:, :2].all()
    # next to skipped units the halo is edge-replicated, exactly as at the image edge
    np.testing.assert_array_equal(out[:, :512], run_mask(real512, FINE))


def test_trusted_clear_units_are_filled_without_reading(real512):
    x, ov = _half_exploding(real512, right="water")
    m, routing = run_cascade(x, CascadeJob(FINE, ring=0), overview=ov)
    assert routing.trusted[:, 8:].all() and (routing.cell_class[:, 8:] == 0).all()
    assert routing.unit_fine[:, 0].all() and not routing.unit_fine[:, 2:].any()
    assert (m.compute()[:, 512:] == 0).all()  # clear, and never read


def test_safety_ring_reads_neighbours(real512):
    x, ov = _half_exploding(real512, right="water")
    m, routing = run_cascade(x, CascadeJob(FINE, ring=1), overview=ov)
    assert routing.unit_fine[:, 1].all() and not routing.unit_fine[:, 3].any()
    m, routing = run_cascade(x, CascadeJob(FINE, ring=2), overview=ov)
    assert routing.unit_fine[:, 2].all()
    with pytest.raises(ReadError):  # the ring reads unit 2's (exploding) data
        m.compute()
    x, ov = _half_exploding(real512, right="nodata")  # nodata units are never pulled in
    m, routing = run_cascade(x, CascadeJob(FINE, ring=1), overview=ov)
    assert not routing.unit_fine[:, 2:].any()
    assert (m.compute()[:, 512:] == 255).all()


def test_no_nodata_seams_where_a_diagonal_neighbour_ran(real512):
    """Units that run ``fine`` on a diagonal, with skipped units between them: each one's corner
    halo toward the other was not read. That must not leak into the other's output as nodata
    (it did: 16 px seams of 255 on valid pixels)."""
    x = np.concatenate([real512, real512[..., ::-1]], axis=-1)[..., :768]
    x = np.ascontiguousarray(np.concatenate([x, x[..., ::-1, :]], axis=-2)[..., :768, :])
    run = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], bool)
    # the overview says "no data" over the other units, so they are skipped (exactly, no coarse
    # model decision involved), though the cube has valid pixels there
    ov = compute_overview(x, 4)[:4]
    ov[:, ~np.kron(run, np.ones((64, 64), bool))] = np.nan
    in_run = np.kron(run, np.ones((256, 256), bool))
    m, routing = run_cascade(x, CascadeJob(FINE, ring=0), overview=ov)
    np.testing.assert_array_equal(routing.unit_fine, run)
    assert (m[~in_run] == 255).all()
    bad = int((m[in_run] == 255).sum())
    assert bad == 0, f"{bad} valid pixels of units that ran fine came out as nodata"
    p, _ = run_cascade(x, CascadeJob(FINE, ring=0), overview=ov, probabilities=True)
    assert np.isfinite(p[:, in_run]).all()
    # real nodata stays nodata, also where a diagonal neighbour's spill covers it
    x2 = x.copy()
    x2[:, 250:262, 250:262] = np.nan  # across the corners of units (0, 0) and (1, 1)
    m2, _ = run_cascade(x2, CascadeJob(FINE, ring=0), overview=ov)
    assert (m2[250:262, 250:262] == 255).all() and (m2[in_run] == 255).sum() == 72


def test_nodata_cells_through_the_accessor(real512):
    x = real512.copy()
    x[:, :, 256:] = np.nan  # whole units of nodata: known exactly from the overview
    ds = _dataset(x, {"y": 256, "x": 256})
    routing = ds.cloud.route(fine="fine", cascade=xcloud.CascadeOptions(ring=0))
    m = ds.cloud.mask(fine="fine", routing=routing)
    assert (m.values[:, 256:] == 255).all()
    assert (routing.cell_class.values[:, 4:] == 3).all()
    assert routing.trusted.values[:, 4:].all()
    assert not routing.unit_fine.values[:, 1].any()
    p = ds.cloud.mask(fine="fine", probabilities=True, cascade=xcloud.CascadeOptions(ring=0)).values
    assert np.isnan(p[:, :, 256:]).all()
    np.testing.assert_allclose(p[:, :, :256].astype(np.float32).sum(axis=0), 1.0, atol=2e-3)


def _grid(probs: np.ndarray, vmin=1.0, vmax=1.0) -> np.ndarray:
    """A coarse-pass output ``(6, gy, gx)`` from per-cell probabilities ``(4, gy, gx)``."""
    gy, gx = probs.shape[-2:]
    return np.concatenate([probs, np.full((1, gy, gx), vmin), np.full((1, gy, gx), vmax)]).astype(
        np.float32
    )


def test_route_threshold_ring_and_mixed_cells():
    # 4 x 4 units of 256 px = 16 x 16 cells of 64 px, all confidently cloudless ...
    probs = np.zeros((4, 16, 16), np.float32)
    probs[0] = 0.97
    probs[2] = 0.03
    probs[:, 0:4, 0:4] = np.array([0.0, 0.95, 0.05, 0.0])[:, None, None]  # unit (0,0) overcast
    probs[:, 8, 8] = [0.1, 0.1, 0.8, 0.0]  # ... one partly cloudy cell in unit (2, 2)
    probs[:, 13, 1] = [0.85, 0.0, 0.15, 0.0]  # one unsure cloudless cell in unit (3, 0)
    starts = np.arange(0, 1025, 256)
    job = CascadeJob(FINE, route_threshold=0.9, ring=0)
    r = route(_grid(probs), job, starts, starts)
    expected = np.zeros((4, 4), bool)
    expected[2, 2] = expected[3, 0] = True
    np.testing.assert_array_equal(r.unit_fine, expected)
    assert r.cell_class[0, 0] == 1 and r.trusted[0, 0] and not r.trusted[8, 8]

    # the partly cloudy cell spreads the ring; the unsure cloudless cell runs fine itself but
    # is no sign of cloud nearby, so it does not
    ringed = route(_grid(probs), CascadeJob(FINE, route_threshold=0.9, ring=1), starts, starts)
    expected = np.zeros((4, 4), bool)
    expected[1:4, 1:4] = expected[3, 0] = True
    np.testing.assert_array_equal(ringed.unit_fine, expected)
    assert ringed.fine_fraction == pytest.approx(10 / 16)
    # an unsure cell whose most likely class is overcast (cloud seen) does spread it
    probs2 = probs.copy()
    probs2[:, 13, 1] = [0.1, 0.85, 0.05, 0.0]
    ringed2 = route(_grid(probs2), CascadeJob(FINE, route_threshold=0.9, ring=1), starts, starts)
    assert ringed2.unit_fine[2:4, 0:2].all() and ringed2.fine_fraction == pytest.approx(11 / 16)

    lax = route(_grid(probs), CascadeJob(FINE, route_threshold=0.8, ring=0), starts, starts)
    assert lax.unit_fine.sum() == 1  # the unsure cell is now trusted

    mixed = _grid(probs, vmin=np.where(np.arange(16) == 5, 0.5, 1.0)[None, :].repeat(16, 0))
    r_mixed = route(mixed, job, starts, starts)  # cells with some nodata are never trusted
    assert r_mixed.unit_fine[:, 1].all()
    # ... but a sure cell that is partly nodata (a swath edge) does not spread the ring: only
    # the partly cloudy cell of unit (2, 2) does
    ringed_mixed = route(mixed, CascadeJob(FINE, route_threshold=0.9, ring=1), starts, starts)
    expected = np.zeros((4, 4), bool)
    expected[:, 1] = True
    expected[1:4, 1:4] = expected[3, 0] = True
    np.testing.assert_array_equal(ringed_mixed.unit_fine, expected)

    empty = route(_grid(probs, vmin=0.0, vmax=0.0), job, starts, starts)
    assert (empty.cell_class == 3).all() and not empty.unit_fine.any()

    off = route(_grid(probs), CascadeJob(FINE, route_threshold=1.0), starts, starts)
    assert off.unit_fine.all() and not off.trusted.any()


def test_overview_dask_equals_numpy(real512):
    x = real512.copy()
    x[:, 10:50, 100:300] = np.nan
    ov_np = compute_overview(x[:, :500, :510], 4)
    ov_da = compute_overview(da.from_array(x[:, :500, :510], chunks=(4, 256, 256)), 4).compute()
    np.testing.assert_array_equal(ov_np, ov_da)
    assert ov_np.shape == (5, 125, 128)
    assert ov_np[4, 3, 30] == 0.0 and np.isnan(ov_np[0, 3, 30]) and ov_np[4, 100, 100] == 1.0


def test_given_overview_keeps_mask_lazy(real512):
    ds = _dataset(real512, {"y": 256, "x": 256})
    ov = _dataset(compute_overview(real512, 4)[:4])
    with dask.config.set(scheduler=_raise):
        routing = ds.cloud.route(fine="fine", cascade=xcloud.CascadeOptions(overview=ov))
        m = ds.cloud.mask(fine="fine", routing=routing)
    assert isinstance(m.data, da.Array)
    assert float(routing.fine_fraction) == pytest.approx(routing.unit_fine.values.mean())
    assert (
        m.attrs["xcloud_model"] == "cascade" and "coarse=" in m.attrs["xcloud_model_weights_sha256"]
    )
    assert routing.cell_class.attrs["flag_meanings"] == "cloudless overcast partly_cloudy nodata"


def test_routing_dataset_over_time(real512):
    x = np.stack([real512, real512[..., ::-1]], axis=1)  # (band, time, y, x)
    ds = xr.Dataset(
        {b: (("time", "y", "x"), x[i]) for i, b in enumerate(S2_BANDS)},
        coords={"time": np.array(["2024-01-01", "2024-01-06"], dtype="datetime64[ns]")},
        attrs={"platform": "sentinel-2a", "processing:level": "L2A"},
    ).chunk({"time": 1, "y": 256, "x": 256})
    routing = ds.cloud.route(fine="fine")
    m = ds.cloud.mask(fine="fine", routing=routing)
    assert m.dims == ("time", "y", "x") and m.chunks == ((1, 1), (256, 256), (256, 256))
    assert routing.fine_fraction.dims == ("time",)
    assert routing.cell_class.shape == (2, 8, 8) and routing.unit_fine.shape == (2, 2, 2)


def test_bad_cascade_arguments(real512):
    ds = _dataset(real512)
    with pytest.raises(ValueError, match="routing= only apply to a cascade model"):
        ds.cloud.mask("fine", routing=False)
    with pytest.raises(ValueError, match="cascade= only apply"):
        ds.cloud.mask("fine", cascade=xcloud.CascadeOptions(route_threshold=0.7, ring=0))
    with pytest.raises(ValueError, match="overview_factor"):
        ds.cloud.mask(fine="fine", cascade=xcloud.CascadeOptions(overview_factor=3))
    bad = _dataset(compute_overview(real512, 8)[:4])
    with pytest.raises(ValueError, match="factor 4"):
        ds.cloud.mask(fine="fine", cascade=xcloud.CascadeOptions(overview=bad))
    with pytest.raises(xcloud.XCloudError, match="lacks the variables"):
        ds.cloud.mask(fine="fine", cascade=xcloud.CascadeOptions(overview=bad.drop_vars("B08")))
    with pytest.raises(ParameterError, match="expected xcloud.CascadeOptions"):
        ds.cloud.mask(fine="fine", cascade={"ring": 0})


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"route_threshold": 1.5}, r"route_threshold=1\.5: expected a probability between 0 and 1"),
        ({"route_threshold": -0.1}, r"route_threshold=-0\.1: expected a probability"),
        ({"route_threshold": float("nan")}, r"route_threshold=nan: expected a probability"),
        ({"route_threshold": "high"}, r"route_threshold='high': expected a probability"),
        ({"route_threshold": 0.8, "routing": False}, r"route_threshold=0\.8 with routing=False"),
        ({"ring": -1}, r"ring=-1: expected a whole number >= 0"),
        ({"ring": 1.5}, r"ring=1\.5: expected a whole number >= 0"),
        ({"overview_factor": 0}, r"overview_factor=0: expected a whole number >= 1"),
        ({"overview_factor": 3}, r"overview_factor=3 makes 48 px .* use one of \[1, 2, 4, 8, 16\]"),
        ({"routing": "no"}, r"routing='no': expected True .*, False .* or a routing Dataset"),
    ],
)
def test_bad_cascade_values_name_value_range_and_fix(kwargs, expected):
    """Out-of-range or mistyped cascade settings are refused when mask() is called, before
    anything is read, with the value, what is expected and what to do."""
    unread = da.full((256, 256), 0.1, dtype="float32").map_blocks(_explode, dtype="float32")
    ds = xr.Dataset(
        {b: (("y", "x"), unread) for b in S2_BANDS},
        attrs={"platform": "sentinel-2a", "processing:level": "L2A"},
    )
    routing = kwargs.pop("routing", True)
    with pytest.raises(ParameterError, match=expected) as e:
        ds.cloud.mask(fine="fine", routing=routing, cascade=xcloud.CascadeOptions(**kwargs))
    assert isinstance(e.value, ValueError)  # and catchable as the builtin


def test_routing_accepts_numpy_bool_and_threshold_bounds(real512):
    ds = _dataset(real512)
    fine = ds.cloud.mask("fine").values
    assert (ds.cloud.mask(fine="fine", routing=np.bool_(False)).values == fine).all()
    off = xcloud.CascadeOptions(route_threshold=1)  # 1: routing off
    assert (ds.cloud.mask(fine="fine", cascade=off).values == fine).all()
    assert (
        ds.cloud.mask(
            fine="fine", cascade=xcloud.CascadeOptions(route_threshold=np.float32(0.0))
        ).shape
        == fine.shape
    )  # trusts any sure class


def test_routing_off_reads_no_overview(real512):
    """With routing off the overview is not needed, so a given (lazy) overview is never read."""
    ds = _dataset(real512, {"y": 256, "x": 256})
    ov = _dataset(compute_overview(real512, 4)[:4], {"y": 64, "x": 64})
    ov = ov.map(lambda v: v.copy(data=v.data.map_blocks(_explode, dtype=v.dtype)))
    off = ds.cloud.mask(
        fine="fine", routing=False, cascade=xcloud.CascadeOptions(overview=ov)
    ).values  # would raise ReadError if read
    np.testing.assert_array_equal(off, ds.cloud.mask("fine").values)


def _water_and_scene(real512: np.ndarray, counter: list | None = None):
    """(2, 4, 512, 1024) dask reflectance: the real scene beside calm dark water (which the
    coarse model trusts as cloudless), the second step mirrored; each block counts its reads."""
    rng = np.random.default_rng(1)
    water = np.array([0.05, 0.04, 0.02, 0.01], np.float32)[:, None, None]
    calm = water * (1 + 0.01 * rng.standard_normal((4, 512, 512))).astype(np.float32)
    step = np.concatenate([real512, calm], axis=-1)
    cube = np.stack([step, step[..., ::-1]])

    def read(block_info=None):
        if counter is not None:
            counter.append(1)
        loc = block_info[None]["array-location"]
        return cube[tuple(slice(a, b) for a, b in loc)]

    chunks = ((1, 1), (4,), (256, 256), (256,) * 4)
    return da.map_blocks(read, chunks=chunks, dtype=np.float32, meta=np.array((), np.float32))


@pytest.mark.parametrize("probabilities", [False, True])
def test_routing_inside_the_graph_equals_routing_now(real512, probabilities):
    """Without an overview the cascade routes inside the graph: the same result, bit for bit,
    as deciding the routing when mask() is called, on a cube where it skips some units."""
    x = _water_and_scene(real512)
    job = CascadeJob(FINE, ring=0)
    now, routing = run_cascade(x, job, probabilities=probabilities, lazy_routing=False)
    lazy, none = run_cascade(x, job, probabilities=probabilities)
    assert none is None
    assert routing.unit_fine.any() and not routing.unit_fine.all()  # some units are skipped
    np.testing.assert_array_equal(lazy.compute(), now.compute())


def test_routing_inside_the_graph_reads_each_chunk_once(real512):
    reads: list = []
    x = _water_and_scene(real512, reads)
    with dask.config.set(scheduler=_raise):  # mask() itself computes nothing
        m = xcloud.mask(
            xr.Dataset({b: (("time", "y", "x"), x[:, i]) for i, b in enumerate(S2_BANDS)},
                       attrs={"platform": "sentinel-2a", "processing:level": "L2A"}),
            "cascade", fine="fine", cascade=xcloud.CascadeOptions(ring=0),
        )  # fmt: skip
    assert "xcloud_route_threshold" in m.attrs
    assert not reads
    m.compute()
    assert len(reads) == x.npartitions  # overview and fine stage shared every read


def test_route_then_mask_with_it(real512):
    """xcloud.route decides the routing once; mask(routing=r) masks with exactly it, reads
    nothing when called and never reads the units it skips."""
    x = _water_and_scene(real512)
    ds = xr.Dataset({b: (("time", "y", "x"), x[:, i]) for i, b in enumerate(S2_BANDS)},
                    attrs={"platform": "sentinel-2a", "processing:level": "L2A"})  # fmt: skip
    r = xcloud.route(ds, fine="fine", cascade=xcloud.CascadeOptions(ring=0))
    assert r.unit_fine.values.any() and not r.unit_fine.values.all()
    with dask.config.set(scheduler=_raise):  # the routing is decided: mask() computes nothing
        m = xcloud.mask(ds, fine="fine", routing=r)
    assert m.attrs["xcloud_route_threshold"] == r.attrs["xcloud_route_threshold"]
    np.testing.assert_array_equal(
        m.values, xcloud.mask(ds, fine="fine", cascade=xcloud.CascadeOptions(ring=0)).values
    )
    # the accessor says the same; a routing for another stage or cube is refused
    assert ds.cloud.route(fine="fine", cascade=xcloud.CascadeOptions(ring=0)).equals(r)
    with pytest.raises(ParameterError, match="fine stage 'fine'"):
        xcloud.mask(ds, fine="ukis-csmask", routing=r)
    with pytest.raises(ParameterError, match="route_threshold=0.9"):
        xcloud.mask(ds, fine="fine", routing=r, cascade=xcloud.CascadeOptions(route_threshold=0.9))
    from xcloud.errors import DimensionError

    with pytest.raises(DimensionError, match="route this cube"):
        xcloud.mask(ds.isel(time=slice(0, 1)), fine="fine", routing=r)
    with pytest.raises(ParameterError, match="one model on every tile"):
        xcloud.route(ds, "fine")
    with pytest.raises(ParameterError, match="no routing="):
        xcloud.route(ds, fine="fine", routing=r)
    # mask() returns one type: the mask (the routing comes from route())
    assert isinstance(xcloud.mask(ds, fine="fine"), xr.DataArray)


def test_when_no_unit_can_be_skipped_the_cascade_runs_fine_itself(real512):
    """A routing that sends every unit to the fine stage is run as the fine model's own graph
    (whole chunks, no per-unit tasks): the same mask, for what fine costs."""
    ds = _dataset(real512, {"y": 256, "x": 256})
    r = ds.cloud.route(fine="fine")
    assert r.unit_fine.values.all()  # broken cloud everywhere on this chip
    m = ds.cloud.mask(fine="fine", routing=r)
    fine = ds.cloud.mask("fine")
    assert "cascade" not in m.data.name and m.data.name.startswith("xcloud-fine")
    np.testing.assert_array_equal(m.values, fine.values)


def test_unit_option_sets_the_routing_unit_and_names_a_bad_one(real512):
    """CascadeOptions(unit=) routes in units of that edge (a nodata half skipped whole either
    way), and a unit the stride or the cell does not tile is refused before anything runs."""
    x = real512.copy()
    x[:, :, 256:] = np.nan
    ds = _dataset(x, {"y": 512, "x": 512})
    r256 = ds.cloud.route(fine="fine", cascade=xcloud.CascadeOptions(ring=0))
    r512 = ds.cloud.route(fine="fine", cascade=xcloud.CascadeOptions(ring=0, unit=512))
    assert (r256.attrs["unit_size_px"], r512.attrs["unit_size_px"]) == (256, 512)
    assert r256.unit_fine.shape == (2, 2) and r512.unit_fine.shape == (1, 1)
    assert not r256.unit_fine.values[:, 1].any() and r512.unit_fine.values.all()
    m = ds.cloud.mask(fine="fine", cascade=xcloud.CascadeOptions(ring=0, unit=512)).values
    assert (m[:, 256:] == 255).all() and (m[:, :256] != 255).all()
    with pytest.raises(ParameterError, match=r"unit=300 px must be a multiple .* try unit=256"):
        ds.cloud.mask(fine="fine", cascade=xcloud.CascadeOptions(unit=300))
    with pytest.raises(ParameterError, match=r"unit='big': expected a whole number of pixels"):
        ds.cloud.mask(fine="fine", cascade=xcloud.CascadeOptions(unit="big"))  # type: ignore[arg-type]
