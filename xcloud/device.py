"""Where inference runs: device choice, CPU threads, one model per process.

Inference inside one process is serialised by a lock and given all the cores that process owns:
intra-op parallelism in torch / onnxruntime scales better than several dask threads each
fighting for the same cores, and the dask threads stay free to read and prepare the next chunk.
"""

from __future__ import annotations

import os
import threading
from typing import Literal

from xcloud.errors import ModelUnavailableError, ParameterError

DEVICES = ("auto", "cpu", "cuda", "mps")
#: Arithmetic of the models' convolutions: ``"auto"`` is bf16 on CUDA and fp32 elsewhere.
PRECISIONS = ("auto", "fp32", "bf16")
#: ``device=`` values, for type checkers and IDEs (``"cuda:1"`` and the like are accepted too).
Device = Literal["auto", "cpu", "cuda", "mps"] | str
#: ``precision=`` values.
Precision = Literal["auto", "fp32", "bf16"]

#: Serialises model calls within a process (see module docstring).
INFERENCE_LOCK = threading.Lock()


def resolve_device(device: str = "auto") -> str:
    """Turn ``"auto"`` into ``"cuda"``, ``"mps"`` or ``"cpu"`` (in that order of preference).

    >>> resolve_device("cpu")
    'cpu'
    """
    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise ParameterError(f"device={device!r} is not one of {list(DEVICES)} (or 'cuda:N')")
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if _mps_available(torch):
        return "mps"
    return "cpu"


def _mps_available(torch) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


_CHECKED: set[str] = set()


def inference_device(device: str = "auto") -> str:
    """:func:`resolve_device`, then a clear error if torch here cannot use that device.

    Called where the model runs (each worker), not where the graph is built: a laptop without
    a GPU may send ``device="cuda"`` to GPU workers.

    >>> inference_device("cpu")
    'cpu'
    """
    dev = resolve_device(device)
    if dev in _CHECKED or dev == "cpu":
        return dev
    import torch

    if dev.startswith("cuda"):
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        suffix = dev.partition(":")[2] or "0"
        if not suffix.isdigit():
            raise ParameterError(f"device={device!r} is not 'cuda' or 'cuda:N' with N a GPU index")
        index = int(suffix)
        if index >= n:
            build = (
                "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            )
            raise ModelUnavailableError(
                f"device={device!r}, but torch {torch.__version__} ({build}) on this machine sees "
                f"{n} CUDA device(s); pass device='auto' (cuda, then mps, then cpu) or "
                "device='cpu', or check CUDA_VISIBLE_DEVICES and the driver"
            )
    elif dev == "mps":
        if not _mps_available(torch):
            raise ModelUnavailableError(
                f"device={device!r}, but torch {torch.__version__} on this machine cannot use "
                "Apple's Metal (mps); pass device='auto' or device='cpu'"
            )
    _CHECKED.add(dev)
    return dev


def autocast_dtype(device: str, precision: str = "auto"):
    """The ``torch.autocast`` dtype for ``precision`` on a resolved ``device`` (None: fp32).

    ``"auto"`` is bf16 on CUDA and fp32 on the CPU and on Apple's GPU; ``"bf16"`` is bf16 on
    CUDA and on the CPU (1.2-1.6x faster there on a CPU with native bf16, see
    :func:`native_bf16_cpu`); ``"fp32"`` is fp32 everywhere.

    >>> autocast_dtype("cpu"), autocast_dtype("cpu", "bf16"), autocast_dtype("cuda:1", "fp32")
    (None, torch.bfloat16, None)
    """
    import torch

    if precision not in PRECISIONS:
        raise ParameterError(f"precision={precision!r} is not one of {list(PRECISIONS)}")
    if precision == "fp32" or (precision == "auto" and not device.startswith("cuda")):
        return None
    if device == "mps":
        raise ParameterError(
            "precision='bf16' runs on CUDA and on the CPU, not on Apple's GPU (mps); pass "
            "precision='auto' or device='cpu'"
        )
    return torch.bfloat16


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX, as oneDNN reports it).
    Without it, bf16 on the CPU is emulated and slower than fp32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - private op moved or missing
        return False


def worker_threads() -> int:
    """Cores this process may use for inference.

    In a dask.distributed worker: the worker's ``nthreads`` (a LocalCluster splits the machine's
    cores between its processes this way). Elsewhere: ``XCLOUD_NUM_THREADS`` or all cores.
    """
    env = os.environ.get("XCLOUD_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS
        return max(1, os.cpu_count() or 1)


def configure_torch_threads() -> None:
    """Set torch's intra-op threads to :func:`worker_threads` (again if something else, a
    training run say, changed them since)."""
    import torch

    n = worker_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
