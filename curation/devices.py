"""Where the classifier runs: CUDA or the CPU, in float32 or bf16 autocast (torch).

`select_device` resolves ``auto|cpu|cuda[:N]``. On the CPU, ``auto`` uses bf16 autocast when
the CPU runs it faster: with Intel AMX tiles (`cpu_has_native_bf16`), or when a 512x512
matmul timed once in both dtypes is >= 1.3x faster in bf16 (`cpu_bf16_probe`; CPUs with
``avx512_bf16`` but no AMX, e.g. AMD EPYC, run bf16 ~2x faster). The answer is kept for the
process and, per CPU model and torch version, in the user's cache folder. The decision
itself (`prefer_bf16`) is pure and tested with given timings.

`curation.model` re-exports every name here; the two are the only modules that import torch.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from curation.errors import ConfigError, InputError

__all__ = [
    "BF16_MIN_SPEEDUP", "DeviceChoice", "autocast_context", "cpu_bf16_probe", "cpu_has_native_bf16",
    "prefer_bf16", "select_device",
]


@dataclass(frozen=True)
class DeviceChoice:
    """Where to run and whether to use bf16 (see `select_device`)."""

    device: str
    amp_dtype: str | None  # "bfloat16" or None

    @property
    def device_type(self) -> str:
        return self.device.split(":")[0]

    @property
    def label(self) -> str:
        """``device/dtype``, e.g. ``cpu/bfloat16`` or ``cuda:1/float32``."""
        return f"{self.device}/{self.amp_dtype or 'float32'}"


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 matrices natively (Intel AMX tiles): there bf16
    autocast runs an encoder ~2.5x faster than float32 (benchmarks/classify_speed.py)."""
    import torch

    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # absent in old torch: no
    return bool(probe()) if probe is not None else False


BF16_MIN_SPEEDUP = 1.3  # bf16 is picked on a CPU without AMX only when clearly faster


def prefer_bf16(fp32_seconds: float, bf16_seconds: float, *, min_speedup: float = BF16_MIN_SPEEDUP) -> bool:
    """The probe's decision (pure): bf16 when the same matmul took at least `min_speedup`
    times less time in bf16 than in float32. Unusable timings (<= 0, NaN) say no."""
    if not (fp32_seconds > 0 and bf16_seconds > 0) or math.isnan(fp32_seconds) or math.isnan(bf16_seconds):
        return False
    return fp32_seconds / bf16_seconds >= min_speedup


def _time_matmuls(size: int = 512, reps: int = 5) -> tuple[float, float]:
    """Best-of-`reps` seconds of one size x size matmul in float32 and in bf16 (interleaved,
    so load from other processes hits both alike); ~0.1 s in all on a 2-core CPU."""
    import time

    import torch

    gen = torch.Generator().manual_seed(0)
    a32 = torch.randn(size, size, generator=gen)
    b32 = torch.randn(size, size, generator=gen)
    a16, b16 = a32.to(torch.bfloat16), b32.to(torch.bfloat16)
    best = {"f": math.inf, "b": math.inf}
    with torch.inference_mode():
        torch.mm(a32, b32), torch.mm(a16, b16)  # warm-up (kernel selection, caches)
        for _ in range(reps):
            for key, (x, w) in (("f", (a32, b32)), ("b", (a16, b16))):
                t0 = time.perf_counter()
                torch.mm(x, w)
                best[key] = min(best[key], time.perf_counter() - t0)
    return best["f"], best["b"]


def _probe_cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "curation" / "cpu_bf16_probe.json"


def _cpu_key() -> str:
    import platform

    import torch

    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name}|{os.cpu_count()}|torch {torch.__version__}"


_PROBE_ANSWER: dict[str, bool] = {}


def cpu_bf16_probe(*, use_disk_cache: bool = True) -> bool:
    """Whether bf16 autocast should be used on this CPU: yes with AMX (`cpu_has_native_bf16`);
    otherwise time a small matmul in both dtypes once (`prefer_bf16`). The answer is kept for
    the process and, per CPU model and torch version, in the user's cache folder
    (``$XDG_CACHE_HOME/curation/cpu_bf16_probe.json``; delete it to probe again)."""
    if "answer" in _PROBE_ANSWER:
        return _PROBE_ANSWER["answer"]
    if cpu_has_native_bf16():
        _PROBE_ANSWER["answer"] = True
        return True
    key, path = _cpu_key(), _probe_cache_file()
    cached: dict[str, Any] = {}
    if use_disk_cache:
        with contextlib.suppress(OSError, ValueError):
            cached = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(cached, dict) and isinstance(cached.get(key), dict) and isinstance(cached[key].get("bf16"), bool):
            _PROBE_ANSWER["answer"] = cached[key]["bf16"]
            return _PROBE_ANSWER["answer"]
    fp32_s, bf16_s = _time_matmuls()
    answer = prefer_bf16(fp32_s, bf16_s)
    _PROBE_ANSWER["answer"] = answer
    if use_disk_cache:
        entry = {"bf16": answer, "fp32_seconds": fp32_s, "bf16_seconds": bf16_s,
                 "probed_at": datetime.now(UTC).replace(microsecond=0).isoformat()}
        with contextlib.suppress(OSError, TypeError):  # a cache that cannot be written only costs a re-probe
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({**(cached if isinstance(cached, dict) else {}), key: entry}, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, path)
    return answer


def select_device(
    requested: str = "auto",
    *,
    cuda_available: bool | None = None,
    bf16_supported: bool | None = None,
    cpu_bf16: bool | None = None,
) -> DeviceChoice:
    """Resolve ``auto|cpu|cuda[:N]`` to a device and an autocast dtype.

    ``auto`` picks CUDA when available (bf16 autocast when the GPU supports it); else the
    CPU, with bf16 autocast when the CPU runs bf16 faster (`cpu_bf16_probe`: AMX, or a timed
    matmul), float32 otherwise. ``cpu`` is always the CPU in plain float32 (no autocast: the
    reference numbers). The probes can be passed in so every branch is testable
    without a GPU.
    """
    import torch

    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if requested == "cpu":
        return DeviceChoice("cpu", None)
    if requested == "auto" and not cuda_available:
        if cpu_bf16 is None:
            cpu_bf16 = cpu_bf16_probe()
        return DeviceChoice("cpu", "bfloat16" if cpu_bf16 else None)
    if requested.startswith("cuda") or requested == "auto":
        if not cuda_available:
            raise ConfigError(
                f"device {requested!r} was asked for but CUDA is not available; use --device cpu or auto"
            )
        if bf16_supported is None:  # pragma: no cover - needs a GPU
            bf16_supported = bool(torch.cuda.is_bf16_supported())
        device = "cuda" if requested == "auto" else requested
        return DeviceChoice(device, "bfloat16" if bf16_supported else None)
    raise InputError(f"device {requested!r} is not auto, cpu or cuda[:N]")


def autocast_context(choice: DeviceChoice) -> contextlib.AbstractContextManager[Any]:
    """`torch.autocast` for the choice (bf16), or a no-op context in float32."""
    import torch

    if choice.amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=choice.device_type, dtype=getattr(torch, choice.amp_dtype))
