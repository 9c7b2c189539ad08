"""Where the classifiers run: device choice, mixed precision, determinism and batch sizes.

``compute.device`` is auto, cpu, cuda or mps. On the CPU nothing changes: full precision, the
kernels already deterministic, batch sizes as configured. On CUDA: autocast to bf16 where the
GPU supports it, else fp16 with a gradient scaler; pinned host memory; larger inference batches;
and the determinism settings of the PyTorch reproducibility notes
(https://pytorch.org/docs/stable/notes/randomness.html).
"""

from __future__ import annotations

import os
from contextlib import nullcontext

import torch

from synthmix.errors import InputError

DEVICES = ("auto", "cpu", "cuda", "mps")
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


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision type on ``device``: bf16 where supported, else fp16; None on the CPU."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return None


def autocast(device: torch.device):
    """A context that runs the forward pass in mixed precision on a GPU (a no-op on the CPU)."""
    dtype = autocast_dtype(device)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for fp16 on CUDA (bf16 and fp32 need none).

    Use it the same way everywhere: ``scaler.scale(loss).backward(); scaler.step(opt); scaler.update()``;
    disabled, it passes the loss and the step through unchanged.
    """
    enabled = device.type == "cuda" and autocast_dtype(device) == torch.float16
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


def device_description(device: torch.device) -> str:
    """A line for the rendered notebook: the device, its name and the precision used."""
    dtype = autocast_dtype(device)
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
