"""Torch device names, checked before anything moves: on a CPU-only torch, `--device cuda` would
otherwise end in a traceback from deep inside the first `.to()`."""

from __future__ import annotations

from chggen_plugins.errors import ChggenError


def available_devices() -> list[str]:
    """The devices this torch can use: cpu, then cuda:0, cuda:1, ... and mps where present."""
    import torch  # here, not at import: `chggen --help` does not pay for torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def check_device(device: str, where: str = "device") -> str:
    """`device` unchanged when this torch can use it; otherwise one line saying which devices it has."""
    import torch

    devices = available_devices()
    build = torch.__version__ if torch.version.cuda else f"{torch.__version__}, built without CUDA"
    has = f"this torch ({build}) can use {', '.join(devices)}"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ChggenError(f"{where} {str(device)!r}: not a torch device name; {has}") from None
    usable = parsed.type in {name.split(":")[0] for name in devices} and (
        parsed.type != "cuda" or parsed.index is None or f"cuda:{parsed.index}" in devices)
    if not usable:
        raise ChggenError(f"{where} {str(device)!r}: no such device; {has}")
    return device


THREADS_VARIABLE = "CHGGEN_THREADS"


def default_threads() -> int:
    """Torch CPU threads for a chggen process: $CHGGEN_THREADS, else 1.

    Why 1: sampling and relaxation make many small tensor operations, where extra threads cost more
    in synchronisation than they give, and on shared cores they fight other processes (the README's
    API example ran 14x slower than the CLI with torch's default threads on two busy cores).
    benchmarks/api_threads.py measures it.

    Returns:
        The thread count (a positive integer).

    Raises:
        ChggenError: $CHGGEN_THREADS set to anything but a positive integer.
    """
    import os

    text = os.environ.get(THREADS_VARIABLE, "1")
    if not text.strip().isdigit() or int(text) < 1:
        raise ChggenError(f"{THREADS_VARIABLE}={text!r}: a positive integer number of torch threads")
    return int(text)


def use_default_threads() -> None:
    """Give torch `default_threads()` CPU threads. Called once when the API is imported, so Python
    users run at the CLI's speed; `torch.set_num_threads(n)` afterwards (or $CHGGEN_THREADS)
    chooses otherwise."""
    import torch

    torch.set_num_threads(default_threads())
