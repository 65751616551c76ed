"""The coarse-to-fine cascade over a numpy or dask array (no xarray here).

1. **Overview**: the cube is block-averaged by ``overview_factor`` (nodata ignored), with the
   fraction of valid pixels under each overview pixel as an extra channel; or the caller hands
   in an overview read elsewhere (COG overviews from STAC).
2. **Routing**: the ``coarse`` model classifies every grid cell (16 x 16 overview pixels, i.e.
   ``16 * overview_factor`` full-resolution pixels) as cloudless / overcast / partly_cloudy /
   nodata. A cell is *trusted* when it is cloudless or overcast with probability
   ``>= route_threshold`` and all its pixels are valid; cells with no valid pixel are nodata
   (exact, from the overview's valid fraction). This pass is computed eagerly: it is small.
3. **Pruned graph**: the cube is cut into routing units (``unit`` pixels, one fine-model
   stride by default). A unit whose cells are all trusted becomes a constant block (0 clear,
   1 cloud, 255 nodata per cell) whose task has *no dependency on the full-resolution data*.
   Every other unit, plus a ``ring`` of units around those with a cell where the coarse model
   sees cloud or cannot tell (its most likely class is not cloudless, and it is not a sure
   cell that is merely partly nodata), runs the fine model through the
   same two stages as :func:`xcloud.inference.core.run_mask`; halos are read only from
   neighbouring units that also run the fine model, and edge-replicated next to skipped ones.

With routing disabled (``route_threshold=1``) every unit runs the fine model with full halos,
and the result equals ``run_mask`` with the fine model bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from xcloud.device import INFERENCE_LOCK, configure_torch_threads, inference_device
from xcloud.errors import DimensionError, ParameterError, is_real, is_whole
from xcloud.inference.core import (
    MaskJob,
    blend_tiles,
    class_thresholds,
    fill_nodata,
    numpy_blocks,
    predict_tiles,
    regular_chunks,
    run_mask,
    work_chunks,
)
from xcloud.models import CELL_OVERVIEW_PX, CLASSES, NODATA, ROUTE_CLASSES, get_spec

__all__ = ["ROUTE_CLASSES", "CascadeJob", "Routing", "compute_overview", "route", "run_cascade"]

#: Mask code that fills a skipped cell of each routing class (partly_cloudy is never skipped).
_FILL = np.array([CLASSES["clear"], CLASSES["cloud"], NODATA, NODATA], dtype=np.uint8)


@dataclass(frozen=True)
class CascadeJob:
    """The cascade's settings; small and picklable like :class:`MaskJob`.

    Attributes
    ----------
    fine
        The fine model's job (bands, wavelengths, level, device, batch size).
    route_threshold
        Minimum coarse-model probability for a cloudless / overcast cell to be trusted, in
        ``[0, 1]``; ``1`` disables routing: every unit runs the fine model. None (the
        default): the threshold chosen for the fine stage
        (:func:`xcloud.models.builtin.route_threshold_for`).
    ring
        Units around each unit with a cell where the coarse model sees cloud or cannot tell
        (not trusted, and its most likely class is not cloudless) that also run the fine
        model: a safety margin against clouds the coarse model missed at the edge of a cloud
        field. Units that run only because a cell most likely cloudless falls short of
        ``route_threshold``, or because a sure cell is partly nodata (a swath edge), run the
        fine model themselves but do not spread it.
    overview_factor
        Block-averaging factor of the overview; a grid cell is ``16 * overview_factor`` pixels.
    unit
        Edge of a routing unit in pixels; a multiple of the fine model's tile stride (default:
        one stride) and of the cell size.

    Examples
    --------
    >>> fine = MaskJob("fine", ("blue", "green", "red", "nir"),
    ...                ((458, 492, 523), (543, 560, 578), (650, 665, 680), (785, 833, 899)))
    >>> job = CascadeJob(fine)
    >>> job.cell, job.unit_size(), job.routing, CascadeJob(fine, route_threshold=1.0).routing
    (64, 256, True, False)
    """

    fine: MaskJob
    route_threshold: float | None = None  # None: the one chosen for the fine stage
    ring: int = 1
    overview_factor: int = 4
    unit: int | None = None

    def __post_init__(self) -> None:
        if self.route_threshold is None:
            from xcloud.models.builtin import route_threshold_for

            object.__setattr__(self, "route_threshold", route_threshold_for(self.fine.model))
        thr = self.route_threshold
        if not (is_real(thr) and 0.0 <= thr <= 1.0):  # type: ignore[operator]
            raise ParameterError(
                f"route_threshold={thr!r}: expected a probability between 0 and 1 (how sure the "
                "coarse model must be that a cell is cloudless or overcast to fill it without the "
                "fine model); 1 or routing=False runs the fine model everywhere, and leaving it "
                "out uses the value chosen on validation data (the model card's)"
            )
        for name, low, meaning in (
            ("ring", 0, "routing units of safety margin around doubtful cells; 0 for none"),
            ("overview_factor", 1, "block-averaging factor of the overview; default 4"),
        ):
            v = getattr(self, name)
            if not is_whole(v, low):
                raise ParameterError(f"{name}={v!r}: expected a whole number >= {low} ({meaning})")
        if self.unit is not None and not is_whole(self.unit, 1):
            raise ParameterError(
                f"unit={self.unit!r}: expected a whole number of pixels (the routing unit's "
                "edge, a multiple of the fine stage's tile stride), or None for the default"
            )
        self.unit_size()  # the cell must tile the unit: refuse now, not at compute time

    @property
    def routing(self) -> bool:
        return self.threshold < 1.0

    @property
    def threshold(self) -> float:
        """``route_threshold`` as resolved (a number once the job exists)."""
        assert self.route_threshold is not None  # (set in __post_init__)
        return float(self.route_threshold)

    @property
    def cell(self) -> int:
        return CELL_OVERVIEW_PX * self.overview_factor

    def unit_size(self) -> int:
        stride = get_spec(self.fine.model).stride
        unit = self.unit or stride
        if self.unit is None and stride % self.cell:
            ok = [
                f
                for f in range(1, stride // CELL_OVERVIEW_PX + 1)
                if stride % (CELL_OVERVIEW_PX * f) == 0
            ]
            raise ParameterError(
                f"overview_factor={self.overview_factor} makes {self.cell} px coarse cells "
                f"({CELL_OVERVIEW_PX} overview pixels each), which do not tile the fine model's "
                f"{stride} px tile stride; use one of {ok} (the coarse model was trained at 4)"
            )
        if unit % stride or unit % self.cell:
            raise ParameterError(
                f"unit={unit} px must be a multiple of the fine model's tile stride ({stride} px) "
                f"and of the coarse cell ({self.cell} px = 16 x overview_factor "
                f"{self.overview_factor}); try unit={math.lcm(stride, self.cell)}"
            )
        return unit


@dataclass
class Routing:
    """What the coarse pass decided, per leading index (time step).

    Attributes
    ----------
    cell_class
        ``(..., gy, gx)`` int8 coarse class per cell (indices into :data:`ROUTE_CLASSES`).
    cell_probability
        ``(..., gy, gx)`` float32 probability of that class (1 for exact nodata cells).
    trusted
        ``(..., gy, gx)`` bool, cells filled without running the fine model.
    unit_fine
        ``(..., uy, ux)`` bool, routing units that ran the fine model (ring included).
    cell, unit
        Cell and unit edge in full-resolution pixels.

    Examples
    --------
    >>> r = Routing(np.zeros((4, 4), "int8"), np.ones((4, 4), "float32"), np.ones((4, 4), bool),
    ...             np.array([[True, False]]), 64, 256)
    >>> float(r.fine_fraction)
    0.5
    """

    cell_class: np.ndarray
    cell_probability: np.ndarray
    trusted: np.ndarray
    unit_fine: np.ndarray
    cell: int
    unit: int

    @property
    def fine_fraction(self) -> np.ndarray:
        """Fraction of units that ran the fine model, per leading index."""
        return self.unit_fine.reshape(self.unit_fine.shape[:-2] + (-1,)).mean(axis=-1)


# --------------------------------------------------------------------------- overview


def _overview_block(block: np.ndarray, f: int) -> np.ndarray:
    """``(..., C, h, w)`` -> ``(..., C + 1, ceil(h/f), ceil(w/f))``: nodata-ignoring block means
    and, as the last channel, the fraction of valid pixels among those inside the image."""
    *lead, c, h, w = block.shape
    ph, pw = (-h) % f, (-w) % f
    x = block.astype(np.float32, copy=False)
    valid = np.asarray(np.isfinite(x).all(axis=-3))
    inside = np.ones(valid.shape, dtype=bool)
    if ph or pw:
        pad = [(0, 0)] * len(lead) + [(0, ph), (0, pw)]
        x = np.pad(x, [(0, 0)] * (len(lead) + 1) + [(0, ph), (0, pw)], constant_values=np.nan)
        valid = np.pad(valid, pad, constant_values=False)
        inside = np.pad(inside, pad, constant_values=False)
    hy, hx = (h + ph) // f, (w + pw) // f
    if not valid.all():  # (the masked copy was a fifth of the pass on a cube without nodata)
        x = np.where(valid[..., None, :, :], x, np.float32(0))
    xs = x.reshape(*lead, c, hy, f, hx, f).sum(axis=(-3, -1))
    nv = valid.reshape(*lead, hy, f, hx, f).sum(axis=(-3, -1)).astype(np.float32)
    ni = inside.reshape(*lead, hy, f, hx, f).sum(axis=(-3, -1)).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = xs / nv[..., None, :, :]
    return np.concatenate([mean, (nv / ni)[..., None, :, :]], axis=-3).astype(np.float32)


def compute_overview(x, factor: int):
    """Lazy (dask) or eager (numpy) overview of ``(..., C, y, x)`` reflectance.

    Returns ``(..., C + 1, ceil(y/f), ceil(x/f))``: the mean of the valid pixels under each
    overview pixel (NaN where none), then the fraction of valid pixels.

    >>> x = np.ones((2, 8, 8), dtype="float32"); x[:, :4, :4] = np.nan
    >>> ov = compute_overview(x, 4)
    >>> ov.shape, ov[2].tolist()
    ((3, 2, 2), [[0.0, 1.0], [1.0, 1.0]])
    """
    import dask.array as da
    from dask.base import tokenize

    if not isinstance(x, da.Array):
        return _overview_block(np.asarray(x), factor)
    for axis in (-2, -1):
        if any(c % factor for c in x.chunks[axis][:-1]):
            raise ValueError(
                f"chunks {x.chunks[axis]} are not multiples of the overview factor {factor}"
            )
    chunks = x.chunks[:-3] + (
        (x.shape[-3] + 1,),
        tuple(math.ceil(c / factor) for c in x.chunks[-2]),
        tuple(math.ceil(c / factor) for c in x.chunks[-1]),
    )
    # map_blocks takes name= as the whole key name: it must say which cube and factor
    name = f"xcloud-overview-{tokenize(x.name, factor)}"
    return da.map_blocks(_overview_block, x, factor, chunks=chunks, dtype=np.float32, name=name)


# --------------------------------------------------------------------------- routing


def _coarse_block(ov: np.ndarray, job: CascadeJob) -> np.ndarray:
    """Overview ``(..., C + 1, h, w)`` -> ``(..., 6, gy, gx)``: the 4 coarse probabilities, the
    minimum and the maximum valid fraction of each cell."""
    from xcloud.models.builtin import create_coarse

    lead = ov.shape[:-3]
    ov = ov.reshape((-1,) + ov.shape[-3:])
    n, _, h, w = ov.shape
    img, vfrac = ov[:, :-1], ov[:, -1]
    # nodata as the scene's mean valid reflectance (as the fine model's tiles get it), not black
    filled = fill_nodata(np.where(np.isfinite(img), img, np.nan).astype(np.float32))
    device = inference_device(job.fine.device)
    coarse = create_coarse(device)
    with INFERENCE_LOCK:
        configure_torch_threads()
        probs = coarse.predict_grid(
            filled,
            bands=job.fine.bands,
            wavelengths=np.asarray(job.fine.wavelengths, dtype=np.float32),
            level=job.fine.level,
        )
    c = CELL_OVERVIEW_PX
    gy, gx = math.ceil(h / c), math.ceil(w / c)
    probs = probs[:, :, :gy, :gx]
    pad = ((0, 0), (0, gy * c - h), (0, gx * c - w))
    vmin = np.pad(vfrac, pad, constant_values=np.inf).reshape(n, gy, c, gx, c).min(axis=(2, 4))
    vmax = np.pad(vfrac, pad, constant_values=-np.inf).reshape(n, gy, c, gx, c).max(axis=(2, 4))
    out = np.concatenate([probs, vmin[:, None], vmax[:, None]], axis=1).astype(np.float32)
    return out.reshape(lead + out.shape[1:])


def _coarse_pass(ov, job: CascadeJob) -> np.ndarray:
    """Run the coarse model on an overview (numpy, or dask computed now: it is small)."""
    import dask.array as da
    from dask.base import tokenize

    if not isinstance(ov, da.Array):
        return _coarse_block(np.asarray(ov, dtype=np.float32), job)
    c = CELL_OVERVIEW_PX
    ov = ov.rechunk({ov.ndim - 3: -1, ov.ndim - 2: -1, ov.ndim - 1: -1})
    chunks = ov.chunks[:-3] + ((6,), (math.ceil(ov.shape[-2] / c),), (math.ceil(ov.shape[-1] / c),))
    name = f"xcloud-coarse-{tokenize(ov.name, job)}"
    grid = ov.map_blocks(_coarse_block, job, chunks=chunks, dtype=np.float32, name=name)
    return np.asarray(grid.compute())


def _dilate(a: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation of the last two axes by a (2r+1)^2 square."""
    out = a.copy()
    for _ in range(r):
        p = np.pad(out, [(0, 0)] * (a.ndim - 2) + [(1, 1), (1, 1)])
        grown = np.zeros_like(out)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                grown |= p[..., dy : dy + out.shape[-2], dx : dx + out.shape[-1]]
        out = grown
    return out


def route(
    grid: np.ndarray,
    job: CascadeJob,
    starts_y: np.ndarray,
    starts_x: np.ndarray,
) -> Routing:
    """Decide, from the coarse pass's output, which units run the fine model.

    ``grid`` is ``(..., 6, gy, gx)``: the 4 coarse class probabilities per cell, then the
    minimum and maximum valid fraction of the cell's overview pixels.

    >>> fine = MaskJob("fine", ("blue", "green", "red", "nir"),
    ...                ((458, 492, 523), (543, 560, 578), (650, 665, 680), (785, 833, 899)))
    >>> grid = np.zeros((6, 4, 8), "float32"); grid[0] = 0.99; grid[4:] = 1  # all clear
    >>> grid[:4, 1, 6] = [0.2, 0.1, 0.7, 0.0]                                 # one partly cloudy cell
    >>> r = route(grid, CascadeJob(fine, ring=0), np.array([0, 256]), np.array([0, 256, 512]))
    >>> r.unit_fine.tolist(), int(r.trusted.sum())
    ([[False, True]], 31)
    """
    probs, vmin, vmax = grid[..., :4, :, :], grid[..., 4, :, :], grid[..., 5, :, :]
    cls = probs.argmax(axis=-3).astype(np.int8)
    p = probs.max(axis=-3)
    empty = vmax <= 0  # no valid pixel: nodata, known exactly
    full = vmin >= 1
    cls[empty] = ROUTE_CLASSES.index("nodata")
    p = np.where(empty, 1.0, p).astype(np.float32)
    if job.routing:
        sure = ((cls == 0) | (cls == 1)) & (p >= job.threshold)
        trusted = empty | (full & sure)
    else:
        sure = trusted = np.zeros(cls.shape, dtype=bool)
    # cells where the coarse model sees cloud, or cannot tell, seed the ring; a cell it thinks
    # most likely cloudless, though not sure enough to fill, runs fine itself but is no sign of
    # a cloud field nearby (on a clear scene a few such cells would pull in all their
    # neighbours). Nor is a cell that is sure but partly nodata (a swath edge), which must run
    # fine, as only the full-resolution data says which pixels are nodata
    doubt = ~trusted & ~sure & (cls != ROUTE_CLASSES.index("cloudless"))
    cell = job.cell
    ny, nx = len(starts_y) - 1, len(starts_x) - 1
    unit_fine = np.zeros(cls.shape[:-2] + (ny, nx), dtype=bool)
    unit_doubt = np.zeros_like(unit_fine)
    unit_empty = np.zeros_like(unit_fine)
    for j in range(ny):
        cy = slice(starts_y[j] // cell, math.ceil(starts_y[j + 1] / cell))
        for i in range(nx):
            cx = slice(starts_x[i] // cell, math.ceil(starts_x[i + 1] / cell))
            unit_fine[..., j, i] = ~trusted[..., cy, cx].all(axis=(-2, -1))
            unit_doubt[..., j, i] = doubt[..., cy, cx].any(axis=(-2, -1))
            unit_empty[..., j, i] = empty[..., cy, cx].all(axis=(-2, -1))
    if job.routing:
        # the ring guards against clouds the coarse model missed next to cells it doubted; a
        # unit without any valid pixel has nothing to miss, so the ring does not pull it in
        unit_fine |= _dilate(unit_doubt, job.ring) & ~unit_empty
    return Routing(cls, p, trusted, unit_fine, cell, job.unit_size())


# --------------------------------------------------------------------------- pruned graph


def _take(block: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    return block[..., y0 : y1 or None, x0 : x1 or None]


def _fine_unit_a(core, n, s, w, e, nw, ne, sw, se, *, a_kw, h, origin, core_y, core_x):
    """Stage A for one fine unit: assemble the halo from the neighbours that were read (edge
    replication stands in for the others, see :func:`predict_tiles`) and run the tiles."""
    have_n, have_s, have_w, have_e = (v is not None for v in (n, s, w, e))
    if have_w or have_e:
        # corners: the corner unit's pixels when it was read, else the N/S strip replicated
        def corner(strip, c, side):
            if c is not None:
                return c
            col = strip[..., :, :1] if side == "w" else strip[..., :, -1:]
            return np.repeat(col, h, axis=-1)

        rows = []
        if have_n:
            rows.append([corner(n, nw, "w")] * have_w + [n] + [corner(n, ne, "e")] * have_e)
        rows.append([w] * have_w + [core] + [e] * have_e)
        if have_s:
            rows.append([corner(s, sw, "w")] * have_w + [s] + [corner(s, se, "e")] * have_e)
        block = np.concatenate([np.concatenate(r, axis=-1) for r in rows], axis=-2)
    else:
        block = np.concatenate([v for v in (n, core, s) if v is not None], axis=-2)
    return predict_tiles(block, core_y=core_y, core_x=core_x, origin=origin, **a_kw)


def _fine_unit_b(own, n, s, w, e, nw, ne, sw, se, *, b_kw, h):
    """Stage B for one fine unit: overlap-add with the neighbours that ran (zeros elsewhere,
    exactly as ``da.overlap(..., boundary=0)`` gives at the image edge), then label.

    A neighbour's spill is NaN-weighted where that neighbour did not read the pixels (its halo
    was edge-replicated next to a skipped unit: a diagonal neighbour's corner when one of the
    two units between is skipped). That is missing data, not nodata: it adds nothing here.
    Nodata comes from this unit's own tiles, which cover all of its pixels."""
    d = 2 * h
    cy, cx = own.shape[-2], own.shape[-1]
    buf = np.zeros(own.shape[:-2] + (cy + 2 * d, cx + 2 * d), dtype=own.dtype)
    buf[..., d : d + cy, d : d + cx] = own
    pieces = {
        (-1, 0): n, (1, 0): s, (0, -1): w, (0, 1): e,
        (-1, -1): nw, (-1, 1): ne, (1, -1): sw, (1, 1): se,
    }  # fmt: skip
    weight = b_kw["n_classes"]  # the weight channel, after the class channels
    for (dy, dx), v in pieces.items():
        if v is None:
            continue
        sy = slice(v.shape[-2] - d, None) if dy < 0 else slice(0, d) if dy > 0 else slice(None)
        sx = slice(v.shape[-1] - d, None) if dx < 0 else slice(0, d) if dx > 0 else slice(None)
        ty = slice(0, d) if dy < 0 else slice(d + cy, None) if dy > 0 else slice(d, d + cy)
        tx = slice(0, d) if dx < 0 else slice(d + cx, None) if dx > 0 else slice(d, d + cx)
        spill = v[..., sy, sx]
        unread = np.isnan(spill[..., weight : weight + 1, :, :])
        buf[..., ty, tx] = np.where(unread, 0, spill) if unread.any() else spill
    return blend_tiles(buf, **b_kw)


def _fill_unit(
    cells: np.ndarray,
    *,
    cell: int,
    offset: tuple[int, int],
    size: tuple[int, int],
    lead: int,
    n_classes: int,
    class_codes: tuple[int, ...],
    probabilities: bool,
):
    """A skipped unit: its cells' fill codes (uint8), or one-hot probabilities (float16)."""
    codes = np.repeat(np.repeat(cells, cell, 0), cell, 1)
    codes = codes[offset[0] : offset[0] + size[0], offset[1] : offset[1] + size[1]]
    codes = codes.reshape((1,) * lead + size)
    if not probabilities:
        return codes
    out = np.zeros(codes.shape[:-2] + (n_classes,) + codes.shape[-2:], dtype=np.float16)
    for k, code in enumerate(class_codes):
        out[..., k, :, :][codes == code] = 1
    out[np.broadcast_to((codes == NODATA)[..., None, :, :], out.shape)] = np.nan
    return out


_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def run_cascade(
    x,
    job: CascadeJob,
    *,
    probabilities: bool = False,
    overview=None,
    lazy_routing: bool = True,
    routing: Routing | None = None,
    routing_only: bool = False,
):
    """Cloud-mask ``(..., band, y, x)`` reflectance with the cascade.

    Parameters
    ----------
    x
        numpy or dask array, float reflectance, NaN where nodata.
    job
        :class:`CascadeJob`.
    probabilities
        Return float16 ``(..., class, y, x)`` probabilities (one-hot in skipped units).
    overview
        Optional ``(..., band, y/f, x/f)`` overview at ``job.overview_factor`` (e.g. read from
        COG overviews); by default it is computed from ``x``.
    lazy_routing
        For a dask ``x`` without ``overview``: compute the overview and route inside the
        graph, so that nothing is read now and each input chunk is read once, for the overview
        and the fine stage together (the routing is then not returned: None). With an
        ``overview``, or ``False``, routing is decided now and the units it skips are never
        read.
    routing
        A :class:`Routing` decided before (for this cube and job): used as it is, nothing is
        routed again.
    routing_only
        Decide the routing now and return ``(None, routing)``, building no mask.

    Returns
    -------
    ``(mask, routing)``: an array of the same kind as ``x`` (dask stays lazy except for the small
    coarse pass, computed now) and the :class:`Routing` it used.

    Examples
    --------
    >>> x = np.full((4, 512, 512), 0.04, dtype="float32")
    >>> fine = MaskJob("fine", ("blue", "green", "red", "nir"),
    ...                ((458, 492, 523), (543, 560, 578), (650, 665, 680), (785, 833, 899)), "l2a")
    >>> m, routing = run_cascade(x, CascadeJob(fine))
    >>> m.shape, routing.unit_fine.shape
    ((512, 512), (2, 2))
    """
    import dask
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    spec = get_spec(job.fine.model)
    if x.ndim < 3:
        raise ValueError(f"expected an array (..., band, y, x), got shape {x.shape}")
    eager = not isinstance(x, da.Array)
    lead_shape = x.shape[:-3]
    xw, cy, cx = _work_blocks(x, job, spec, eager)
    kw = dict(source=xw.name, job=job, spec=spec, shape=x.shape[-2:], probabilities=probabilities,
              starts_y=np.cumsum((0,) + cy), starts_x=np.cumsum((0,) + cx))  # fmt: skip
    in_graph = routing is None and lazy_routing and job.routing and overview is None
    if in_graph and not eager:
        # 1-3 in one graph: each unit decides when the routing of its time step is known
        ov = compute_overview(xw, job.overview_factor)
        token = dask.base.tokenize(xw.name, job, probabilities, "in-graph routing")
        graph: _PrunedGraph = _RoutedInGraph(names=_names(token), overview=ov.name, **kw)
        dependencies = [xw, ov]
        for li in np.ndindex(*lead_shape):
            graph.add_time_step(li)  # type: ignore[call-arg]
    else:
        if routing is None:
            routing = _routing(xw, x.shape, job, overview)
        if routing_only:
            return None, routing
        _check_routing(routing, job, lead_shape, cy, cx)
        if job.routing and routing.unit_fine.all():
            # nothing to skip: the fine model's own graph (whole chunks, not one task per unit)
            # gives the same mask for less (benchmarks/cascade.py, "routing decided first")
            return run_mask(x, job.fine, probabilities=probabilities), routing
        fill_codes = _FILL[routing.cell_class.astype(np.intp)]
        # 3. the pruned graph
        token = dask.base.tokenize(xw.name, job, probabilities, routing.unit_fine, fill_codes)
        graph = _PrunedGraph(names=_names(token), **kw)
        dependencies = [xw]
        for li in np.ndindex(*lead_shape):
            graph.add_time_step(li, routing.unit_fine[li], fill_codes[li])
    name_out = graph.names[2]
    hlg = HighLevelGraph.from_collections(name_out, graph.dsk, dependencies=dependencies)
    lead_chunks = tuple((1,) * n for n in lead_shape)
    k = len(spec.classes)
    if probabilities:
        out = da.Array(hlg, name_out, lead_chunks + ((k,), cy, cx), dtype=np.float16)
    else:
        out = da.Array(hlg, name_out, lead_chunks + (cy, cx), dtype=np.uint8)
    if eager:
        return out.compute(scheduler="sync"), routing
    target = x.chunks[:-3] + (((k,),) if probabilities else ()) + x.chunks[-2:]
    return (out.rechunk(target) if out.chunks != target else out), routing


def _check_routing(routing: Routing, job: CascadeJob, lead_shape, cy, cx) -> None:
    """Refuse a routing decided for another cube or other cells and units."""
    want = tuple(lead_shape) + (len(cy), len(cx))
    if routing.unit_fine.shape != want or (routing.cell, routing.unit) != (
        job.cell,
        job.unit_size(),
    ):
        raise DimensionError(
            f"the routing has {routing.unit_fine.shape} units of {routing.unit} px and cells of "
            f"{routing.cell} px; this cube needs {want} units of {job.unit_size()} px and cells "
            f"of {job.cell} px: route this cube (xcloud.route) with the same settings"
        )


def _work_blocks(x, job: CascadeJob, spec, eager: bool):
    """``x`` as a dask array in the cascade's work blocks, and their sizes along y and x:
    routing units (cut to the fine stage's stride) when routing; without routing, the blocks
    :func:`~xcloud.inference.core.run_mask` would use, so that the result is bit for bit its."""
    h = spec.overlap // 2
    Y, X = x.shape[-2:]
    unit = job.unit_size()
    if job.routing:
        cy = work_chunks(regular_chunks(Y, unit), unit, h)
        cx = work_chunks(regular_chunks(X, unit), unit, h)
    elif eager:  # one block, exactly as run_mask's numpy path
        cy, cx = (Y,), (X,)
    else:  # run_mask's chunking, so that the sums (and labels) are bit for bit the same
        cy, cx = (work_chunks(x.chunks[a], spec.stride, h) for a in (-2, -1))
    chunks = tuple((1,) * n for n in x.shape[:-3]) + ((x.shape[-3],), cy, cx)
    xw = numpy_blocks(np.asarray(x), chunks) if eager else x.rechunk(chunks)
    return xw, cy, cx


def _routing(xw, shape: tuple[int, ...], job: CascadeJob, overview) -> Routing:
    """Steps 1-2: the overview (given or computed from ``xw``) and the coarse pass, eager;
    without routing every cell is partly cloudy (nothing is read)."""
    lead_shape, (Y, X) = shape[:-3], shape[-2:]
    gy, gx = math.ceil(Y / job.cell), math.ceil(X / job.cell)
    if not job.routing:
        grid = np.zeros(lead_shape + (6, gy, gx), dtype=np.float32)
        grid[..., 2, :, :] = 1.0  # partly cloudy everywhere, all valid
        grid[..., 4:, :, :] = 1.0
    else:
        if overview is None:
            overview = compute_overview(xw, job.overview_factor)
        elif overview.shape[-3] == shape[-3]:  # no valid-fraction channel: derive it from NaN
            ov = np.asarray(overview, dtype=np.float32)
            overview = np.concatenate([ov, np.isfinite(ov).all(axis=-3, keepdims=True)], axis=-3)
        grid = _coarse_pass(overview, job)
        if grid.shape[-2:] != (gy, gx):
            f = job.overview_factor
            raise DimensionError(
                f"the overview is {tuple(overview.shape[-2:])} px, a {tuple(grid.shape[-2:])} "
                f"cell grid; the cube ({Y} x {X} px) needs an overview at factor {f} of its "
                f"grid ({math.ceil(Y / f)} x {math.ceil(X / f)} px, a ({gy}, {gx}) cell grid): "
                f"pass its block mean by {f}, or leave overview out to compute it from the cube"
            )
    starts_y = np.cumsum((0,) + tuple(xw.chunks[-2]))
    starts_x = np.cumsum((0,) + tuple(xw.chunks[-1]))
    return route(grid, job, starts_y, starts_x)


@dataclass
class _PrunedGraph:
    """Builds the cascade's dask graph, one unit at a time: a fill task (no input) for each
    skipped unit; for each unit that runs the fine stage, its halo reads from neighbours
    that also run it, stage A (tiles) and stage B (blend with the neighbours' stage A)."""

    names: tuple[str, str, str]  # halo, stage A, output
    source: str  # the input's dask name, in work blocks
    job: CascadeJob
    spec: Any
    shape: tuple[int, int]
    probabilities: bool
    starts_y: np.ndarray
    starts_x: np.ndarray
    dsk: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        spec, k = self.spec, len(self.spec.classes)
        self.h = spec.overlap // 2
        self.codes = tuple(CLASSES[c] for c in spec.classes)
        self.a_kw: dict[str, Any] = dict(job=self.job.fine, tile=spec.tile_size,
                                         overlap=spec.overlap, n_classes=k, shape=self.shape)  # fmt: skip
        self.b_kw = dict(h=self.h, n_classes=k, codes=self.codes, probabilities=self.probabilities,
                         thresholds=class_thresholds(spec.classes, self.job.fine.thresholds))  # fmt: skip

    def add_time_step(self, li: tuple[int, ...], fine: np.ndarray, fill_codes: np.ndarray) -> None:
        stage_a: list = []  # (key, input keys, meta) of this time step's fine units
        for j in range(len(self.starts_y) - 1):
            for i in range(len(self.starts_x) - 1):
                out_key = (self.names[2],) + li + ((0,) if self.probabilities else ()) + (j, i)
                if fine[j, i]:
                    stage_a.append(self._fine(li, j, i, fine, out_key))
                else:
                    self.dsk[out_key] = self._fill(li, j, i, fill_codes)
        # stage A: one task per unit (on a GPU, units share model calls: core._predict)
        for key, inputs, meta in stage_a:
            self.dsk[key] = (partial(_fine_unit_a, **meta), *inputs)

    def _fill(self, li, j: int, i: int, fill_codes: np.ndarray) -> tuple:
        """A skipped unit: the task carries its cells' codes only (a few bytes), not a block."""
        y0, y1, x0, x1 = self._bounds(j, i)
        cell = self.job.cell
        cells = fill_codes[y0 // cell : math.ceil(y1 / cell), x0 // cell : math.ceil(x1 / cell)]
        return (
            partial(
                _fill_unit, np.ascontiguousarray(cells), cell=cell,
                offset=(int(y0 % cell), int(x0 % cell)), size=(int(y1 - y0), int(x1 - x0)),
                lead=len(li), n_classes=len(self.codes), class_codes=self.codes,
                probabilities=self.probabilities,
            ),
        )  # fmt: skip

    def _fine(self, li, j: int, i: int, fine: np.ndarray, out_key: tuple) -> tuple:
        """A unit that runs the fine stage: its halo tasks and stage B go into the graph now,
        its stage A is returned (added after the time step's other units)."""
        h, (name_s, name_a, _) = self.h, self.names
        ny, nx = fine.shape
        src = (self.source,) + li + (0,)
        nbrs_a: list[tuple | None] = []
        nbrs_b: list[tuple | None] = []
        for (dy, dx), halo, ran in zip(_NEIGHBOURS, _halo_from(fine, j, i),
                                       _ran(fine, j, i), strict=True):  # fmt: skip
            key = (name_s,) + li + (j, i, dy, dx)
            if halo:
                self.dsk[key] = (_halo, src + (j + dy, i + dx), dy, dx, h)
            nbrs_a.append(key if halo else None)
            nbrs_b.append((name_a,) + li + (j + dy, i + dx) if ran else None)
        has = dict(zip(_NEIGHBOURS, (v is not None for v in nbrs_a), strict=True))
        y0, y1, x0, x1 = self._bounds(j, i)
        origin = (int(y0 - h * has[(-1, 0)]), int(x0 - h * has[(0, -1)]))
        meta = dict(a_kw=self.a_kw, h=h, origin=origin, core_y=(int(y0), int(y1)),
                    core_x=(int(x0), int(x1)))  # fmt: skip
        self.dsk[out_key] = (
            partial(_fine_unit_b, b_kw=self.b_kw, h=h),
            (name_a,) + li + (j, i),
            *nbrs_b,
        )
        return (name_a,) + li + (j, i), [src + (j, i), *nbrs_a], meta

    def _bounds(self, j: int, i: int) -> tuple[int, int, int, int]:
        sy, sx = self.starts_y, self.starts_x
        return sy[j], sy[j + 1], sx[i], sx[i + 1]


def _names(token: str) -> tuple[str, str, str]:
    return (f"xcloud-cascade-halo-{token}", f"xcloud-cascade-tiles-{token}",
            f"xcloud-cascade-mask-{token}")  # fmt: skip


def _route_step(blocks: list, job: CascadeJob, starts_y, starts_x, lead: int):
    """One time step's routing, inside the graph: its overview assembled from the blocks, the
    coarse pass, and the decisions (units that run the fine stage, fill code per cell)."""
    grid = _coarse_block(np.block(blocks), job)
    r = route(grid, job, starts_y, starts_x)
    sel = (0,) * lead
    return r.unit_fine[sel], _FILL[r.cell_class[sel].astype(np.intp)]


def _ran(fine: np.ndarray, j: int, i: int) -> list[bool]:
    """For each of :data:`_NEIGHBOURS` of unit ``(j, i)``: whether it is inside the image and
    runs the fine stage (its stage A then spills into this unit's stage B)."""
    ny, nx = fine.shape
    return [bool(0 <= j + dy < ny and 0 <= i + dx < nx and fine[j + dy, i + dx])
            for dy, dx in _NEIGHBOURS]  # fmt: skip


def _halo_from(fine: np.ndarray, j: int, i: int) -> list[bool]:
    """For each of :data:`_NEIGHBOURS`: whether unit ``(j, i)`` reads its halo from it: the
    neighbour runs the fine stage and, for a corner, so do both units between (next to a
    skipped unit the halo is edge-replicated instead). The one rule both graphs wire by."""
    return [
        ran and (not (dy and dx) or bool(fine[j + dy, i] and fine[j, i + dx]))
        for (dy, dx), ran in zip(_NEIGHBOURS, _ran(fine, j, i), strict=True)
    ]


def _halo(block: np.ndarray, dy: int, dx: int, h: int) -> np.ndarray:
    """The ``h`` px of a neighbour's block next to the unit it is at ``(dy, dx)`` from."""
    ys = (-h, 0) if dy < 0 else (0, h) if dy > 0 else (0, 0)
    xs = (-h, 0) if dx < 0 else (0, h) if dx > 0 else (0, 0)
    return _take(block, *ys, *xs)


def _in_graph_a(decided, core, *nbrs, j, i, h, y0, x0, **meta):
    """Stage A of a unit whose routing is known only at compute time: None if it is skipped,
    else :func:`_fine_unit_a` with the halos of the neighbours that also run the fine stage
    (a corner only when both units between run it), as the pruned graph wires them. ``nbrs``
    are the neighbours' whole input blocks (None outside the image): they are read anyway,
    for the overview, so slicing them here saves eight tasks per unit."""
    fine = decided[0]
    if not fine[j, i]:
        return None
    use = [_halo(v, dy, dx, h) if ok else None
           for (dy, dx), v, ok in zip(_NEIGHBOURS, nbrs, _halo_from(fine, j, i), strict=True)]  # fmt: skip
    origin = (int(y0 - h * (use[0] is not None)), int(x0 - h * (use[2] is not None)))
    return _fine_unit_a(core, *use, h=h, origin=origin, **meta)


def _in_graph_b(decided, own, *nbrs, j, i, b_kw, h, cells, fill_kw):
    """A unit's output when its routing is known only at compute time: its fill, or stage B
    with the neighbours that ran the fine stage."""
    fine, fill_codes = decided
    if not fine[j, i]:
        return _fill_unit(np.ascontiguousarray(fill_codes[cells]), **fill_kw)
    use = [v if ran else None for v, ran in zip(nbrs, _ran(fine, j, i), strict=True)]
    return _fine_unit_b(own, *use, b_kw=b_kw, h=h)


@dataclass
class _RoutedInGraph(_PrunedGraph):
    """The cascade's graph when routing is computed inside it: every unit has its tasks, which
    look up their time step's routing task (a small result) to fill or run the fine stage.
    Nothing is read before compute, and each input chunk feeds both the overview and the fine
    stage; the result is the pruned graph's, bit for bit."""

    overview: str = ""  # the overview's dask name, in the same blocks as the input

    def add_time_step(self, li: tuple[int, ...]) -> None:  # type: ignore[override]
        _, name_a, name_out = self.names
        ny, nx = len(self.starts_y) - 1, len(self.starts_x) - 1
        route_key = (f"{name_out}-route",) + li
        blocks = [[(self.overview,) + li + (0, j, i) for i in range(nx)] for j in range(ny)]
        self.dsk[route_key] = (
            partial(_route_step, job=self.job, starts_y=self.starts_y, starts_x=self.starts_x,
                    lead=len(li)),
            blocks,
        )  # fmt: skip
        h, cell = self.h, self.job.cell
        src = (self.source,) + li + (0,)
        for j in range(ny):
            for i in range(nx):
                halos: list = []
                stage_a: list = []
                for dy, dx in _NEIGHBOURS:
                    jj, ii = j + dy, i + dx
                    inside = 0 <= jj < ny and 0 <= ii < nx
                    halos.append(src + (jj, ii) if inside else None)
                    stage_a.append((name_a,) + li + (jj, ii) if inside else None)
                y0, y1, x0, x1 = self._bounds(j, i)
                self.dsk[(name_a,) + li + (j, i)] = (
                    partial(_in_graph_a, j=j, i=i, h=h, y0=y0, x0=x0, a_kw=self.a_kw,
                            core_y=(int(y0), int(y1)), core_x=(int(x0), int(x1))),
                    route_key, src + (j, i), *halos,
                )  # fmt: skip
                fill_kw = dict(
                    cell=cell, offset=(int(y0 % cell), int(x0 % cell)),
                    size=(int(y1 - y0), int(x1 - x0)), lead=len(li), n_classes=len(self.codes),
                    class_codes=self.codes, probabilities=self.probabilities,
                )  # fmt: skip
                cells = (slice(y0 // cell, math.ceil(y1 / cell)),
                         slice(x0 // cell, math.ceil(x1 / cell)))  # fmt: skip
                out_key = (name_out,) + li + ((0,) if self.probabilities else ()) + (j, i)
                self.dsk[out_key] = (
                    partial(_in_graph_b, j=j, i=i, b_kw=self.b_kw, h=h, cells=cells,
                            fill_kw=fill_kw),
                    route_key, (name_a,) + li + (j, i), *stage_a,
                )  # fmt: skip
