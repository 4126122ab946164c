"""Reading and naming files that a project's (untrusted) source names: ``in list`` files, export paths.

A pull request's ``.aud`` files decide which paths audlang opens, in CI that
holds credentials. So every such path resolves, symlinks followed, inside one
of the allowed roots (the project folder, and ``exports_root`` where
``audlang.toml`` names it); only regular files are read, never more than a size
limit, and opening never blocks (a FIFO or a device is refused before it is
read). Errors are ``UnsafeFile`` with a message that names the path as
written, never the file's content. Imports nothing of ours.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

import attrs

#: the default size limit of a file read (``max_list_bytes`` in audlang.toml overrides it)
MAX_READ_BYTES = 100 * 1024 * 1024

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)


class UnsafeFile(Exception):
    """A path outside the allowed roots, not a regular file, or too large: ``str()`` is the user's message."""


class OutsideRoots(UnsafeFile):
    """A path that resolves outside every allowed root."""


@attrs.frozen
class FileRead:
    path: str  # the resolved path that was read
    content: bytes


def inside(path: str | os.PathLike, roots: Iterable[str | os.PathLike]) -> Path:
    """``path`` resolved (symlinks followed, even where the file does not exist yet), if it lies in a root.

    Raises ``UnsafeFile`` naming the roots otherwise.
    """
    try:
        resolved = Path(os.path.realpath(path))
        allowed = [Path(os.path.realpath(r)) for r in roots]
    except (ValueError, OSError):  # a NUL byte, a name too long for the system
        raise UnsafeFile("is not a usable path (a NUL byte, or a name too long)") from None
    if any(resolved == r or resolved.is_relative_to(r) for r in allowed):
        return resolved
    # The resolved path is not shown: the log of a CI run may be public, and the machine's layout is
    # none of a pull request's business.
    through = " through a symbolic link" if os.path.abspath(path) != str(resolved) else ""
    raise OutsideRoots(f"is outside the project folder{through}")


def read_regular(path: str | os.PathLike, roots: Iterable[str | os.PathLike], limit: int,
                 limit_name: str = "") -> FileRead:
    """The bytes of a regular file inside ``roots``, at most ``limit`` of them, without blocking.

    Raises ``FileNotFoundError`` (an ``OSError``) when nothing is there and ``UnsafeFile`` for every
    refusal.
    """
    resolved = inside(path, roots)
    try:
        before = os.stat(resolved)
    except FileNotFoundError:
        raise
    except ValueError:
        raise UnsafeFile("is not a usable path (a NUL byte)") from None
    except OSError as error:
        raise UnsafeFile(f"cannot be read: {error.strerror}") from None
    _regular(before, limit, limit_name)
    try:
        fd = os.open(resolved, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC | _BINARY)
    except OSError as error:
        raise UnsafeFile(f"cannot be read: {error.strerror}") from None
    try:
        _regular(os.fstat(fd), limit, limit_name)  # the same file, checked again once open
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise UnsafeFile(_too_large(limit, limit_name))
    except OSError as error:
        raise UnsafeFile(f"cannot be read: {error.strerror}") from None
    finally:
        os.close(fd)
    return FileRead(str(resolved), b"".join(chunks))


def _regular(info: os.stat_result, limit: int, limit_name: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFile("is not a regular file (a folder, device, socket or FIFO is never read)")
    if info.st_size > limit:
        raise UnsafeFile(_too_large(limit, limit_name))


def _too_large(limit: int, limit_name: str) -> str:
    return f"is larger than the limit of {limit:,} bytes" + (f" (`{limit_name}`)" if limit_name else "")


def shown_columns(header: list[str], most: int = 5, width: int = 24) -> str:
    """A few column names of a file's header, each cut short: what a diagnostic may show of a file."""
    cut = [c if len(c) <= width else c[: width - 1] + "…" for c in header[:most]]
    more = len(header) - most
    return ", ".join(repr(c)[1:-1] for c in cut) + (f" and {more} more" if more > 0 else "")
