"""Where the classifiers run: device choice, precision, determinism and batch sizes.

``compute.device`` is auto, cpu, cuda or mps. ``compute.precision`` is fp32, bf16 or auto:
fp32 runs everything in full precision (on the CPU exactly as before precision existed); bf16
runs training and inference under ``torch.autocast`` to bfloat16 (weights, optimizer and loss
stay float32); auto picks bf16 on a GPU that supports it (fp16 with a gradient scaler on one
that does not) and on a CPU with bf16 instructions (AVX-512 BF16 or AMX), else fp32. The
precision is set on a model with ``use_precision`` and training and prediction follow it, as
they follow the model's device. On CUDA also: pinned host memory, larger inference batches,
and the determinism settings of the PyTorch reproducibility notes
(https://pytorch.org/docs/stable/notes/randomness.html).
"""

from __future__ import annotations

import os
from contextlib import nullcontext

import torch

from synthmix.errors import InputError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "auto")
AUTOCAST_TYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with native bf16 arithmetic
CUBLAS_WORKSPACE = ":4096:8"  # one of the two values torch documents for deterministic cuBLAS
MAX_INFERENCE_SCALE = 16


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def available_devices() -> list[str]:
    """The device types torch can use on this machine (always includes cpu)."""
    return [name for name, ok in (("cuda", torch.cuda.is_available()), ("mps", _mps_available())) if ok] + ["cpu"]


def resolve_device(name: str = "auto") -> torch.device:
    """The ``torch.device`` for ``compute.device``: auto picks cuda, then mps, then cpu.

    Raises ``InputError`` naming ``compute.device`` when the named device is not available here.
    """
    if name not in DEVICES:
        raise InputError(f"compute.device: {name!r} is not a device; expected one of {', '.join(DEVICES)}")
    available = available_devices()
    if name == "auto":
        return torch.device(available[0])
    if name not in available:
        raise InputError(f"compute.device: {name} is not available on this machine (torch {torch.__version__} "
                         f"finds {', '.join(available)}); use auto or cpu, or run on a machine with {name}")
    return torch.device(name)


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU has native bf16 arithmetic (an AVX-512 BF16 or AMX flag in /proc/cpuinfo)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as handle:
                cpuinfo = handle.read()
        except OSError:  # not Linux: no way to tell, so no bf16 by default
            return False
    flags = {flag for line in cpuinfo.splitlines() if line.startswith("flags") for flag in line.split()}
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def resolve_precision(name: str, device: torch.device) -> str:
    """The precision a step runs in on ``device`` for ``compute.precision``: 'fp32', 'bf16' or 'fp16'.

    fp32 and bf16 are taken as asked (bf16 on a CUDA GPU without bf16 support is an
    ``InputError``); auto is bf16 on a CUDA GPU that supports it, else fp16; fp16 on MPS; bf16 on a
    CPU with native bf16 (``cpu_has_bf16``), else fp32.
    """
    if name not in PRECISIONS:
        raise InputError(f"compute.precision: {name!r} is not a precision; expected one of {', '.join(PRECISIONS)}")
    if name == "fp32":
        return "fp32"
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if name == "bf16":
        if device.type == "cuda" and not cuda_bf16:
            raise InputError(f"compute.precision: bf16 is not supported by {torch.cuda.get_device_name(device)}; "
                             "use auto (fp16 there) or fp32")
        return "bf16"
    if device.type == "cuda":
        return "bf16" if cuda_bf16 else "fp16"
    if device.type == "mps":
        return "fp16"
    return "bf16" if cpu_has_bf16() else "fp32"


def use_precision(model, precision: str):
    """Mark ``model`` to train and predict in ``precision`` (from ``resolve_precision``); returns it."""
    if precision not in ("fp32", *AUTOCAST_TYPES):
        raise ValueError(f"precision must be fp32, bf16 or fp16, got {precision!r}")
    model.synthmix_precision = precision
    return model


def model_precision(model) -> str:
    """The precision ``model`` trains and predicts in: what ``use_precision`` set, else fp32."""
    return getattr(model, "synthmix_precision", "fp32")


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast type of ``precision``: bfloat16 or float16, None for fp32."""
    return AUTOCAST_TYPES.get(precision)


def autocast(device: torch.device, precision: str = "fp32"):
    """A context running the forward pass in ``precision`` on ``device`` (a no-op for fp32)."""
    dtype = autocast_dtype(precision)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str = "fp32") -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for fp16 on CUDA (bf16 and fp32 need none).

    Use it the same way everywhere: ``scaler.scale(loss).backward(); scaler.step(opt); scaler.update()``;
    disabled, it passes the loss and the step through unchanged.
    """
    enabled = device.type == "cuda" and precision == "fp16"
    return torch.amp.GradScaler("cuda" if enabled else "cpu", enabled=enabled)


def pin_memory(device: torch.device) -> bool:
    """Whether data loaders should pin host memory (faster copies to a CUDA device)."""
    return device.type == "cuda"


def make_deterministic(device: torch.device) -> None:
    """Apply torch's documented settings for reproducible CUDA runs (nothing changes on the CPU).

    Sets ``CUBLAS_WORKSPACE_CONFIG`` (call this before the first CUDA operation), turns cuDNN
    benchmarking off and asks for deterministic cuDNN and torch algorithms.
    """
    if device.type != "cuda":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def device_description(device: torch.device, precision: str = "fp32") -> str:
    """A line for the rendered notebook: the device, its name and the precision used."""
    dtype = autocast_dtype(precision)
    precision = f"{str(dtype).removeprefix('torch.')} autocast" if dtype is not None else "float32"
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        properties = torch.cuda.get_device_properties(index)
        return (f"cuda:{index} ({properties.name}, {properties.total_memory / 2**30:.0f} GiB), {precision}, "
                f"torch {torch.__version__}, CUDA {torch.version.cuda}")
    if device.type == "mps":
        return f"mps (Apple GPU), {precision}, torch {torch.__version__}"
    return f"cpu ({torch.get_num_threads()} threads), {precision}, torch {torch.__version__}"


def inference_batch_size(device: torch.device, default: int) -> int:
    """The batch size for inference (no gradients) on ``device``.

    The CPU keeps ``default``. A GPU takes larger batches: on CUDA ``default`` times one per
    10 GiB of device memory (at most 16 times), on MPS twice ``default``.
    """
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        memory_gib = torch.cuda.get_device_properties(index).total_memory / 2**30
        return default * max(1, min(MAX_INFERENCE_SCALE, int(memory_gib // 10)))
    if device.type == "mps":
        return default * 2
    return default
