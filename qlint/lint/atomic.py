"""Replacing a file so that a reader, or a crash, sees the old content or the new, never half."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def replace_file(path: Path, data: bytes, *, suffix: str = ".tmp", keep_mode: bool = False) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it, and rename it over ``path``."""
    mode = stat.S_IMODE(path.stat().st_mode) if keep_mode else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_source(path: Path, data: bytes) -> None:
    """Replace a user's file: through a symlink (not over it), keeping its mode; refuse a
    read-only file (root could replace it, but the user did not mean it to change)."""
    path = Path(os.path.realpath(path))
    if not os.access(path, os.W_OK) or not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(13, "file is read-only")
    replace_file(path, data, suffix=".qlint-tmp", keep_mode=True)
