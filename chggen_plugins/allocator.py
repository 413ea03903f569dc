"""glibc's malloc told to keep the memory torch frees between score calls.

Why: one native score call allocates and frees tensors of 0.1-5 MB. With its default, adaptive
thresholds glibc hands many of them back to the system (unmapped, or trimmed off the top of the
heap) and the next call faults every page in again: a small inpainting run spent a large part of
its time in the kernel, faulting pages in (measured: docs/benchmarks.md, sampler overhead;
`tests/test_allocator.py` checks the cut). Fixed thresholds keep the freed pages for reuse. Other C libraries (macOS, musl) are left as they are; `CHGGEN_MALLOC=system`
leaves glibc's defaults too.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # mallopt parameters, glibc's malloc.h
MMAP_THRESHOLD = 32 << 20    # bytes: larger blocks are still mapped (32 MiB is glibc's own ceiling)
TRIM_THRESHOLD = 256 << 20   # bytes of free heap top kept before any is returned to the system


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds; True when they were set (Linux with glibc)."""
    if os.environ.get("CHGGEN_MALLOC") == "system" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no libc.so.6 or no mallopt
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
