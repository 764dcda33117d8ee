"""Files that hold personal data (the kit maker's CSV of names and addresses, finance's exports,
any list of contacts), written the one way: readable by their owner only (mode 0600) and whole or
not at all, so a reader never sees half a file and a failure never leaves one behind."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

PRIVATE_MODE = 0o600


@contextlib.contextmanager
def private_file(path: Path, mode: str = "w", *, overwrite: bool = True, **open_args: Any) -> Iterator[IO[Any]]:
    """A file to write `path` through: NAME.part in the same directory, created new with mode 0600,
    flushed to disk and renamed to NAME when the block ends without error. On any error the .part
    is removed and whatever was at NAME before is left as it was.

    overwrite=False never replaces an existing NAME (FileExistsError, nothing written); a .part
    that exists already (another writer at the same moment, or one that died) is FileExistsError
    too, before anything is written."""
    partial = path.with_name(path.name + ".part")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    try:
        with os.fdopen(descriptor, mode, **open_args) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _publish(partial, path, overwrite)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def _publish(partial: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(partial, path)  # atomic on one file system: NAME is the old file or the new one
        return
    os.link(partial, path)  # atomic, and FileExistsError rather than replacing what is there
    partial.unlink()


def _sync_directory(directory: Path) -> None:
    """The rename itself made durable (best effort: not every file system opens directories)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
