"""Output files written whole or not at all.

Why: a kill or a full disk during a plain write leaves a truncated file where a good one was (an
8-frame extxyz became unreadable that way). `replacing` hands out a temporary name beside the target
and renames it over the target only when the writing finished; the rename is atomic on one file
system, so readers see the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, renamed over `path` when the block ends without an error.

    Args:
        path: the file to (re)write; its folder is made if missing.

    Returns:
        A context manager yielding the temporary path to write to (keeps `path`'s suffix, so
        libraries that choose a format by suffix choose the same one). On an error the temporary
        file is removed and `path` is left as it was.

    Example:
        >>> with replacing(Path("out.csv")) as temporary:   # doctest: +SKIP
        ...     temporary.write_text("a,b\\n")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
