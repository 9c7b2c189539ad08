"""Device selection and the CPU path (this machine has no GPU): auto picks cpu, a named GPU that is
not here is a clear error, and on the CPU nothing changes (float32, no scaler, batch as given)."""

from __future__ import annotations

import os

import pytest
import torch

from synthmix.errors import InputError
from synthmix.steps import devices

no_gpu = pytest.mark.skipif(torch.cuda.is_available() or devices._mps_available(), reason="a GPU is present")


@no_gpu
def test_auto_picks_cpu_without_a_gpu():
    assert devices.resolve_device("auto") == torch.device("cpu")
    assert devices.available_devices() == ["cpu"]


@no_gpu
@pytest.mark.parametrize("name", ["cuda", "mps"])
def test_naming_an_absent_gpu_is_an_error_naming_the_key(name):
    with pytest.raises(InputError) as caught:
        devices.resolve_device(name)
    (problem,) = caught.value.problems
    assert problem.startswith("compute.device:") and f"{name} is not available" in problem


def test_unknown_device_name_is_an_error():
    with pytest.raises(InputError, match="compute.device: 'tpu' is not a device"):
        devices.resolve_device("tpu")


def test_cpu_keeps_full_precision_and_needs_no_scaler():
    cpu = devices.resolve_device("cpu")
    layer = torch.nn.Linear(4, 2)
    with devices.autocast(cpu):
        assert layer(torch.ones(1, 4)).dtype == torch.float32
    scaler = devices.grad_scaler(cpu)
    assert not scaler.is_enabled()
    loss = layer(torch.ones(1, 4)).sum()
    assert scaler.scale(loss) is loss
    assert devices.pin_memory(cpu) is False


def test_cpu_batch_size_and_determinism_settings_are_left_alone(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    cpu = torch.device("cpu")
    benchmark = torch.backends.cudnn.benchmark
    devices.make_deterministic(cpu)
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ and torch.backends.cudnn.benchmark == benchmark
    assert devices.inference_batch_size(cpu, 32) == 32


def test_description_names_the_device_and_precision():
    text = devices.device_description(torch.device("cpu"))
    assert text.startswith("cpu (") and "float32" in text and torch.__version__ in text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_path_autocasts_and_is_deterministic():
    cuda = devices.resolve_device("auto")
    assert cuda.type == "cuda"
    devices.make_deterministic(cuda)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == devices.CUBLAS_WORKSPACE and torch.backends.cudnn.deterministic
    precision = devices.resolve_precision("auto", cuda)
    assert precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    layer = torch.nn.Linear(4, 2).to(cuda)
    with devices.autocast(cuda, precision):
        assert layer(torch.ones(1, 4, device=cuda)).dtype == devices.autocast_dtype(precision)
    with devices.autocast(cuda, "fp32"):
        assert layer(torch.ones(1, 4, device=cuda)).dtype == torch.float32
    assert devices.grad_scaler(cuda, precision).is_enabled() == (precision == "fp16")
    assert devices.inference_batch_size(cuda, 32) >= 32
    assert torch.cuda.get_device_name(0) in devices.device_description(cuda, precision)


def test_precision_auto_picks_bf16_only_where_the_hardware_has_it(monkeypatch):
    cpu = torch.device("cpu")
    assert devices.cpu_has_bf16("flags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile") is True
    assert devices.cpu_has_bf16("flags\t\t: fpu sse avx2 amx_bf16 amx_tile") is True
    assert devices.cpu_has_bf16("flags\t\t: fpu sse avx2 avx512f avx512_vnni") is False
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda cpuinfo=None: False)
    assert devices.resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda cpuinfo=None: True)
    assert devices.resolve_precision("auto", cpu) == "bf16"
    assert devices.resolve_precision("fp32", cpu) == "fp32" and devices.resolve_precision("bf16", cpu) == "bf16"
    assert devices.resolve_precision("auto", torch.device("mps")) == "fp16"
    with pytest.raises(InputError, match="compute.precision: 'fp8' is not a precision"):
        devices.resolve_precision("fp8", cpu)


def test_bf16_autocast_on_the_cpu_and_no_scaler():
    cpu = torch.device("cpu")
    layer = torch.nn.Linear(4, 2)
    with devices.autocast(cpu, "bf16"):
        assert layer(torch.ones(1, 4)).dtype == torch.bfloat16
    assert not devices.grad_scaler(cpu, "bf16").is_enabled()
    assert "bfloat16 autocast" in devices.device_description(cpu, "bf16")
