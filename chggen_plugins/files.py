"""Output files written whole or not at all, to places checked before the work starts.

Why: a kill or a full disk during a plain write leaves a truncated file where a good one was (an
8-frame extxyz became unreadable that way). `replacing` hands out a temporary name beside the target
and renames it over the target only when the writing finished; the rename is atomic on one file
system, so readers see the old file or the new one, never half of one. `output_file` and
`output_folder` check a destination before any sampling: a folder given for a file, `/proc/x` or a
read-only mount used to end in a traceback after the work was done, and the work was lost.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chggen_plugins.errors import ChggenError


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, renamed over `path` when the block ends without an error.

    Args:
        path: the file to (re)write; its folder is made if missing.

    Returns:
        A context manager yielding the temporary path to write to (keeps `path`'s suffix, so
        libraries that choose a format by suffix choose the same one). On an error the temporary
        file is removed and `path` is left as it was; an OSError (a full disk) becomes one
        ChggenError line naming `path`.

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
    except OSError as error:  # a full disk, a vanished folder: said with the file it concerns
        kept = "the file there before is kept" if path.exists() else "nothing was written"
        raise ChggenError(f"cannot write {path} ({error.strerror or error}); {kept}") from None
    finally:
        temporary.unlink(missing_ok=True)


def output_file(path: Path, option: str, overwrite: bool = False) -> Path:
    """Check, before any work, that `path` can be written as a new file (or replaced, if `overwrite`).

    Args:
        path: the output file.
        option: what to name in a refusal (e.g. "--out").
        overwrite: an existing file may be replaced.

    Returns:
        `path`, its folder made if missing.

    Raises:
        ChggenError: `path` is a folder, exists (without `overwrite`), or its folder cannot be
            made or written (a read-only mount, /proc, a file where a folder should be).
    """
    path = Path(path)
    if path.is_dir():
        raise ChggenError(f"{option} {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise ChggenError(f"{option} {path} exists; pass --overwrite to replace it, or choose another name")
    _check_writable(path.parent, option, path)
    return path


def output_folder(path: Path, option: str) -> Path:
    """Check, before any work, that `path` is (or can be made) a folder this process can write in.

    Args:
        path: the output folder (an existing one is kept: runs resume into it).
        option: what to name in a refusal (e.g. "--out").

    Returns:
        `path`, made if missing.

    Raises:
        ChggenError: `path` is a file, or cannot be made or written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ChggenError(f"{option} {path} is a file; give a folder (new, or one this command wrote before)")
    _check_writable(path, option, path)
    return path


def _check_writable(folder: Path, option: str, named: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ChggenError(f"{option} {named}: cannot write in {folder} ({error.strerror or error})") from None
