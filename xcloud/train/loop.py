"""Training loops for the fine segmenter and the coarse patch classifier.

One function per task, :func:`train_fine` and :func:`train_coarse`, driven by a
:class:`TrainConfig`. Both show a progress bar, write a checkpoint every ``ckpt_every`` steps
(``<out>/checkpoint.pt``: model, optimiser, scheduler, step and every random state), resume
from it when ``resume=True``, and are deterministic for a given seed on a given device and
thread count.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from xcloud.models import CELL_OVERVIEW_PX
from xcloud.models.coarse import CoarseNet
from xcloud.models.fine import FineNet
from xcloud.train.data import IGNORE, Batcher, Scene
from xcloud.train.losses import adjacency_loss, luotamo_ce, partial_ce

__all__ = ["TrainConfig", "auto_device", "cell_targets", "train_coarse", "train_fine"]


@dataclass
class TrainConfig:
    """Options of a training run (all have defaults; the CLI takes any of them from a JSON
    ``--config`` file and the common ones as flags).

    Attributes
    ----------
    steps, batch_size, crop, lr, weight_decay
        Optimisation: AdamW with warm-up and cosine decay over ``steps`` batches of ``batch_size``
        random ``crop`` x ``crop`` crops.
    gamma
        Focal exponent of the fine loss (0 = cross-entropy).
    class_weights
        Optional per-class weights of the fine loss (clear, cloud, thin_cloud, cloud_shadow).
    groups
        Sub-batches per batch, each with its own source and band set, so that every gradient
        step mixes sensors.
    source_weights
        Sampling probability of each data source.
    seed, threads, device
        Reproducibility and resources; ``device="auto"`` picks cuda, then mps, then cpu.
    out, ckpt_every, resume, time_limit
        Output folder, checkpoint period, resume from ``out/checkpoint.pt``, and a wall-clock
        budget in seconds after which the run stops cleanly (checkpointed) early; the learning
        rate then decays with elapsed time as well, so time-limited runs are not bit-reproducible.
    init
        Optional state dict path to initialise from (e.g. a pretrained SEnSeI): a ``torch.save``
        file or a ``.safetensors`` file (e.g. exported ``fine.<version>.safetensors`` to fine-tune).
    distill
        Weight (lambda) of the distillation term of the fine loss; 0 (default) turns it off. The
        training scenes then carry teacher probabilities (``Scene.soft``, see
        :mod:`xcloud.train.distill`) and the loss is ``supervised + distill * soft CE to the
        teacher`` on every pixel the teacher covers, unlabelled scenes included.
    distill_weights
        Per-class weights (clear, cloud, thin_cloud, cloud_shadow) of the distillation term by
        the teacher's probability mass (a pixel's weight is ``sum_k t_k w_k``): emphasise shadow.
    clean_labels
        Sources whose chips go through :func:`xcloud.train.data.split_noisy_labels` first: chips
        whose labels contradict their imagery are left out of the supervised term (with
        ``distill`` > 0 they stay in as teacher-only scenes under ``unlabelled:...``).
    partial_shadow
        Labelled sources whose chips with cloud but no shadow label have their "clear" read as
        "clear or cloud shadow" (:func:`xcloud.train.data.mark_unlabelled_shadow`): for sets
        that label shadow in only some scenes (L8 Biome).
    full_bands
        Fine model: probability that a batch sees all of its source's bands rather than a random
        subset (see :class:`xcloud.train.data.Batcher`).
    widths
        Fine model: the SEnSeI width and the five encoder stages' widths (None: the
        :class:`~xcloud.models.fine.FineNet` default); the student's size.
    coarse_factors, adjacency_weight
        Coarse overview factors (one drawn per batch) and weight of the adjacency loss.
    coarse_targets
        ``"labels"``: coarse cell targets from the training labels (:func:`cell_targets`);
        ``"routing"``: the labels are the fine model's predictions (routing distillation, see
        :mod:`xcloud.train.routing`) and cells use :func:`~xcloud.train.routing.routing_targets`.
    route_tolerance
        With ``coarse_targets="routing"``: a cell is cloudless / overcast when at most this
        fraction of its valid pixels is something else (0: every pixel; see
        :func:`~xcloud.train.routing.routing_targets`).
    coarse_alpha
        Per-class weights (cloudless, overcast, partly_cloudy, nodata) of the coarse loss's
        true-class term (default :data:`COARSE_ALPHA`).
    """

    steps: int = 4000
    batch_size: int = 16
    crop: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    gamma: float = 1.0
    source_weights: dict[str, float] = field(
        default_factory=lambda: {"oncloudn": 0.35, "l8biome": 0.35, "synthetic": 0.3}
    )
    seed: int = 0
    threads: int = 2
    device: str = "auto"
    out: str = "runs/fine"
    ckpt_every: int = 200
    resume: bool = False
    time_limit: float | None = None
    init: str | None = None
    groups: int = 4
    class_weights: tuple[float, ...] | None = None
    coarse_factors: tuple[int, ...] = (2, 4)
    adjacency_weight: float = 0.5
    coarse_targets: str = "labels"
    coarse_alpha: tuple[float, ...] | None = None
    route_tolerance: float = 0.0
    distill: float = 0.0
    distill_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 3.0)
    clean_labels: tuple[str, ...] = ()
    partial_shadow: tuple[str, ...] = ()
    full_bands: float = 0.0
    widths: tuple[int, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def auto_device(device: str = "auto") -> torch.device:
    """Resolve ``"auto"`` to cuda, mps or cpu (in that order of preference); a device torch
    here cannot use is an :class:`~xcloud.errors.XCloudError` that says so (as for inference)."""
    from xcloud.device import inference_device

    return torch.device(inference_device(device))


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - third-party code may use the legacy global generator


def cell_targets(label: torch.Tensor, cell: int, *, tol: float = 0.0) -> torch.Tensor:
    """Coarse cell classes from full-resolution training labels.

    A cell (``cell`` x ``cell`` pixels) is ``nodata`` (3) if all its pixels are ignore,
    ``cloudless`` (0) if at most ``tol`` of its valid pixels are cloud or thin cloud,
    ``overcast`` (1) if at least ``1 - tol`` are, and ``partly_cloudy`` (2) otherwise
    (:func:`xcloud.train.routing.cell_classes`, with the cloud codes 1, 2, 4).

    Parameters
    ----------
    label
        ``(B, H, W)`` training codes (see :mod:`xcloud.train.data`).
    """
    from xcloud.train.routing import cell_classes

    cloud = (1, 2, 4)  # cloud, thin cloud, cloud or thin
    return cell_classes(label, cell, cloudless=None, overcast=cloud, tolerance=tol)


def _run(
    model: torch.nn.Module,
    batcher: Batcher,
    cfg: TrainConfig,
    loss_fn: Callable[
        [torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, np.random.Generator],
        torch.Tensor,
    ],
    *,
    log: Callable[[str], None] | None = None,
    stop_after: int | None = None,
) -> dict[str, Any]:
    from tqdm.auto import tqdm

    torch.set_num_threads(cfg.threads)
    device = auto_device(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_schedule(cfg, time.perf_counter()))
    run = _RunState(model, opt, sched, batcher, np.random.default_rng(cfg.seed + 1), cfg)
    ckpt = out / "checkpoint.pt"
    if cfg.resume and ckpt.exists():
        run.load(ckpt, device)
    elif cfg.init:
        _initialise(model, cfg.init, device, log)

    t0 = time.perf_counter()
    model.train()
    bar = tqdm(total=cfg.steps, initial=run.step, desc=type(model).__name__, mininterval=5.0)
    ema = None
    while run.step < cfg.steps:
        val, source = _train_step(model, batcher, cfg, loss_fn, run.aug_rng, opt, sched, device)
        run.step += 1
        ema = val if ema is None else 0.98 * ema + 0.02 * val
        run.history.append((run.step, str(source), val))  # plain types: load weights_only
        bar.update(1)
        bar.set_postfix(loss=f"{ema:.3f}", src=source[:4])
        if run.step % cfg.ckpt_every == 0 or run.step == cfg.steps:
            run.save(ckpt)
        if stop_after is not None and run.step >= stop_after:  # simulated interruption (tests)
            run.save(ckpt)
            break
        if cfg.time_limit is not None and time.perf_counter() - t0 > cfg.time_limit:
            run.save(ckpt)
            if log:
                log(f"time limit reached at step {run.step}")
            break
    bar.close()
    wall = time.perf_counter() - t0
    torch.save(model.state_dict(), out / "model.pt")
    summary = {"steps_done": run.step, "wall_s": wall, "device": str(device),
               "config": cfg.to_json()}  # fmt: skip
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    np.save(out / "history.npy", np.array([(s, v) for s, _, v in run.history], dtype=np.float64))
    return summary


def _lr_schedule(cfg: TrainConfig, t_start: float) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to 2 %; with a time limit the decay follows whichever
    runs out first, steps or time, so a slow machine still ends on a low learning rate."""
    warm = max(1, cfg.steps // 20)

    def schedule(i: int) -> float:
        if i < warm:
            return (i + 1) / warm
        t = (i - warm) / max(1, cfg.steps - warm)
        if cfg.time_limit:
            t = max(t, (time.perf_counter() - t_start) / cfg.time_limit)
        return float(0.02 + 0.98 * 0.5 * (1.0 + np.cos(np.pi * min(t, 1.0))))  # plain: weights_only

    return schedule


@dataclass
class _RunState:
    """What a checkpoint holds, so that a resumed run continues exactly where it stopped."""

    model: torch.nn.Module
    opt: Any
    sched: Any
    batcher: Batcher
    aug_rng: np.random.Generator
    cfg: TrainConfig
    step: int = 0
    history: list = field(default_factory=list)

    def save(self, ckpt: Path) -> None:
        state = {
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "step": self.step,
            "history": self.history,
            "batcher_rng": self.batcher.rng.bit_generator.state,
            "aug_rng": self.aug_rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "config": self.cfg.to_json(),
        }
        tmp = ckpt.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(ckpt)

    def load(self, ckpt: Path, device) -> None:
        state = torch.load(ckpt, map_location=device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.step, self.history = state["step"], state["history"]
        self.batcher.rng.bit_generator.state = state["batcher_rng"]
        self.aug_rng.bit_generator.state = state["aug_rng"]
        torch.set_rng_state(state["torch_rng"])


def _initialise(model: torch.nn.Module, init, device, log) -> None:
    """Start from weights (a ``.safetensors`` export or a ``.pt`` state dict); keys the model
    has and the file lacks keep their fresh values."""
    if str(init).endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(str(init), device=str(device))
    else:
        state = torch.load(init, map_location=device, weights_only=True)
    missing = model.load_state_dict(state, strict=False)
    if log:
        log(f"initialised from {init}; missing {len(missing.missing_keys)} keys")


def _train_step(model, batcher, cfg, loss_fn, aug_rng, opt, sched, device) -> tuple[float, str]:
    """One optimiser step on a batch of ``cfg.groups`` band-set groups; its loss and sources."""
    parts = batcher.sample_groups(cfg.groups)
    xt = [torch.from_numpy(p[0]).to(device) for p in parts]
    yt = torch.cat([torch.from_numpy(p[1]) for p in parts]).to(device)
    wlt = [torch.from_numpy(p[2]).to(device) for p in parts]
    source = "+".join(sorted({p[3][:4] for p in parts}))
    extra = {}
    if len(parts[0]) > 4:  # teacher probabilities (distillation)
        extra["soft"] = torch.cat([torch.from_numpy(p[4]) for p in parts]).to(device)
    loss = loss_fn(model, xt, yt, wlt, aug_rng, **extra)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    sched.step()
    return loss.item(), source


def _sources(data: dict[str, list[Scene]]) -> dict[str, list[Scene]]:
    return {k: v for k, v in data.items() if v}


def train_fine(
    data: dict[str, list[Scene]],
    cfg: TrainConfig,
    *,
    model: FineNet | None = None,
    log: Callable[[str], None] | None = None,
    stop_after: int | None = None,
) -> tuple[FineNet, dict[str, Any]]:
    """Train the fine segmenter on ``data`` (``{source: scenes}``, clear scenes under
    ``"synthetic"``) and return the model and a run summary."""
    _seed_everything(cfg.seed)
    model = model or (FineNet(cfg.widths) if cfg.widths else FineNet())
    batcher = Batcher(
        _sources(data),
        cfg.source_weights,
        batch_size=cfg.batch_size,
        crop=cfg.crop,
        seed=cfg.seed,
        teacher=cfg.distill > 0,
        full_bands=cfg.full_bands,
    )

    weight = torch.tensor(cfg.class_weights) if cfg.class_weights else None
    dweight = torch.tensor(cfg.distill_weights, dtype=torch.float32)

    def loss_fn(m, x, y, wl, rng, soft=None):
        logits = m(x, wl)
        loss = partial_ce(logits, y, gamma=cfg.gamma, class_weight=weight)
        if soft is not None:
            from xcloud.train.losses import distill_ce

            loss = loss + cfg.distill * distill_ce(logits, soft, class_weight=dweight)
        return loss

    summary = _run(model, batcher, cfg, loss_fn, log=log, stop_after=stop_after)
    return model.eval(), summary


# Luotamo et al. weight the rare, hard partly-cloudy class up and discourage confusing the two
# pure classes with each other (beta on the wrong class's term).
COARSE_ALPHA = torch.tensor([1.0, 1.0, 2.0, 1.0])
COARSE_BETA = torch.tensor([0.5, 0.5, 0.25, 0.5])


def train_coarse(
    data: dict[str, list[Scene]],
    cfg: TrainConfig,
    *,
    model: CoarseNet | None = None,
    log: Callable[[str], None] | None = None,
    stop_after: int | None = None,
) -> tuple[CoarseNet, dict[str, Any]]:
    """Train the coarse classifier: crops are block-averaged by a random factor from
    ``cfg.coarse_factors`` into overviews; a grid cell covers ``16 f`` full-resolution pixels."""
    if cfg.coarse_targets not in ("labels", "routing"):
        raise ValueError(
            f"coarse_targets must be 'labels' or 'routing', got {cfg.coarse_targets!r}"
        )
    if not 0.0 <= cfg.route_tolerance < 0.5:
        raise ValueError(
            f"route_tolerance must be a fraction in [0, 0.5), got {cfg.route_tolerance!r}"
        )
    _seed_everything(cfg.seed)
    model = model or CoarseNet()
    alpha = torch.tensor(cfg.coarse_alpha) if cfg.coarse_alpha else COARSE_ALPHA
    if cfg.coarse_targets == "routing":
        from xcloud.train.routing import routing_targets

        targets = partial(routing_targets, tolerance=cfg.route_tolerance)
    else:
        targets = cell_targets
    batcher = Batcher(
        _sources(data), cfg.source_weights, batch_size=cfg.batch_size, crop=cfg.crop, seed=cfg.seed
    )

    def loss_fn(m, x, y, wl, rng):
        y = y.clone()
        x = [xi.clone() for xi in x]
        if rng.random() < 0.3:  # teach the no-data class: blank a random rectangle
            s = x[0].shape[-1]
            y0, x0 = rng.integers(0, s // 2, size=2)
            h0, w0 = rng.integers(s // 4, s, size=2)
            for xi in x:
                xi[:, :, y0 : y0 + h0, x0 : x0 + w0] = 0.0
            y[:, y0 : y0 + h0, x0 : x0 + w0] = IGNORE
        f = int(rng.choice(cfg.coarse_factors))
        overview = [F.avg_pool2d(xi, f) for xi in x]
        target = targets(y, CELL_OVERVIEW_PX * f)
        logits = m(overview, wl)
        return luotamo_ce(
            logits, target, alpha, COARSE_BETA
        ) + cfg.adjacency_weight * adjacency_loss(logits)

    summary = _run(model, batcher, cfg, loss_fn, log=log, stop_after=stop_after)
    return model.eval(), summary
