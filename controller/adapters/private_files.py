"""Files that hold keys: 0600, in directories that are 0700, made in one place.

A file holding a key (a topology YAML with the MNs' keys, an MN's key file, charon's
config) is written with :func:`private_file` into a directory made by
:func:`private_dir` or :func:`private_run_dir`.  The file is created 0600 before any byte
is written (no window in which another user could open it) and an existing file is
narrowed to 0600 before it is truncated; a symlink in its place is refused
(``O_NOFOLLOW``).  The SQLite files have their own creator in the same spirit
(``store.private_db_file``).

All our processes (controller, charon, the MN client inside a Mininet host) run as
root: nothing needs to read these files as another user.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path

LOG = logging.getLogger("mipvpn.files")

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Make ``path`` (and each missing parent) a directory with mode 0700.

    A directory that already exists is narrowed to 0700 when this user owns it and it is
    not a shared sticky directory (``/tmp``); otherwise it is left as it is, with a
    warning when others may enter it."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made by someone else meanwhile: judged below
            continue
        os.chmod(d, DIR_MODE)       # mkdir's mode is filtered by the umask
    st = path.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(str(path))
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        if st.st_uid == os.geteuid() and not mode & stat.S_ISVTX:
            if path not in missing:
                LOG.warning("%s had mode %o; narrowed to 0700 (it holds keys)", path, mode)
            os.chmod(path, DIR_MODE)
        else:
            LOG.warning("%s (mode %o) is not private: keys written under it may be "
                        "readable by other users", path, mode)
    return path


def private_run_dir(prefix: str) -> Path:
    """A new temporary run directory (``mkdtemp``), mode 0700."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, DIR_MODE)
    return path


def private_file(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` to ``path`` with mode 0600 (created so, or narrowed before it is
    truncated).  The caller puts it in a private directory."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.ftruncate(fd, 0)
        view = memoryview(raw)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    return path


def is_private(path: str | os.PathLike[str]) -> bool:
    """True when neither group nor others have any access to ``path``."""
    return not stat.S_IMODE(Path(path).stat().st_mode) & 0o077
