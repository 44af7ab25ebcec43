"""File operations that either happen whole or not at all, and deletion that stays in bounds."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Iterable, Iterator

from runs_manager import faults

TEMP_MARK = ".tmp-"


def fsync_file(path: str) -> None:
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    """Make a rename in ``path`` durable; some file systems cannot, and the rename stands."""
    with contextlib.suppress(OSError):
        fsync_file(path)


def atomic_write(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data``: readers and crashes see the old file or the new one."""
    atomic_write_chunks(path, (data,))


def atomic_write_chunks(path: str, chunks: Iterable[bytes]) -> None:
    """Like atomic_write, with the content given piece by piece (memory stays bounded)."""
    install(write_temp(path, chunks), path)


def install(temp: str, path: str) -> None:
    """Rename ``temp`` (written whole and synced) over ``path``, made durable; ``temp`` is
    removed if that fails."""
    try:
        faults.point("atomic-write:temp-written")
        os.replace(temp, path)
    except BaseException:
        _unlink_quietly(temp)
        raise
    fsync_dir(os.path.dirname(path))


def write_temp(path: str, chunks: Iterable[bytes], mark: str = TEMP_MARK) -> str:
    """A new temporary file beside ``path`` (named ``path`` + ``mark`` + a random part) with
    ``path``'s mode and ``chunks`` as its content, synced to disk; returns its path."""
    directory, base = os.path.split(path)
    fd, temp = tempfile.mkstemp(prefix=base + mark, dir=directory or ".")
    try:
        with naming(path):
            try:
                mode = os.stat(path).st_mode & 0o777
            except FileNotFoundError:
                mode = 0o666 & ~_umask()
            os.fchmod(fd, mode)
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(temp)
        raise
    os.close(fd)
    return temp


@contextlib.contextmanager
def naming(path: str) -> Iterator[None]:
    """An OSError raised inside names ``path`` if it names no file (a write to a descriptor):
    'No space left on device' alone does not say where."""
    try:
        yield
    except OSError as e:
        if e.filename is None:
            raise OSError(e.errno, e.strerror, path) from None
        raise


def _with_full_path(function: Any, path: str, exc_info: Any) -> None:
    """shutil.rmtree's errors name the file by its base name only: name the whole path."""
    error = exc_info[1]
    if isinstance(error, OSError):
        raise OSError(error.errno, error.strerror, path) from None
    raise error


def remove_tree(path: str) -> None:
    """shutil.rmtree, through read-only directories too (a code snapshot's)."""
    shutil.rmtree(path, onerror=_writable_then_again)


def _writable_then_again(function: Any, path: str, exc_info: Any) -> None:
    if not isinstance(exc_info[1], PermissionError):
        raise exc_info[1]
    os.chmod(os.path.dirname(path), 0o755)
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, 0o755)
        remove_tree(path)
    else:
        os.unlink(path)


def remove_temp_files(path: str, mark: str = TEMP_MARK, older_than: float = 0.0) -> None:
    """Remove what an interrupted atomic_write of ``path`` left behind (with ``older_than``,
    only files not changed for that many seconds: another process may still be writing).

    Call only while holding the lock that every writer of ``path`` holds.
    """
    directory, base = os.path.split(path)
    prefix = base + mark
    try:
        names = os.listdir(directory or ".")
    except (FileNotFoundError, NotADirectoryError):  # a file where a group's directory would be
        return
    for name in names:
        if name.startswith(prefix):
            temp = os.path.join(directory, name)
            with contextlib.suppress(FileNotFoundError):
                if older_than and time.time() - os.lstat(temp).st_mtime < older_than:
                    continue
                os.unlink(temp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def is_inside(path: str, root: str) -> bool:
    """Whether ``path``'s directory really lies inside ``root``, symbolic links resolved.

    The last component is not resolved: a symbolic link there is removed, never followed.
    """
    parent = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    real_root = os.path.realpath(root)
    return parent == real_root or parent.startswith(real_root.rstrip(os.sep) + os.sep)


def remove(path: str, root: str) -> bool:
    """Delete a file, symbolic link or directory tree at ``path`` if it lies inside ``root``.

    Returns whether something was removed. Never follows a link out of ``root``.
    """
    if not os.path.lexists(path) or not is_inside(path, root):
        return False
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, onerror=_with_full_path)
    else:
        os.unlink(path)
    return True


def prune_empty_parents(path: str, stop: str, keep: Callable[[str], bool]) -> None:
    """Remove the now-empty directories above ``path``, up to but not including ``stop``,
    and not from the first one ``keep`` (given its path relative to ``stop``) wants kept."""
    stop = os.path.normpath(stop)
    parent = os.path.dirname(os.path.normpath(path))
    while parent and parent != stop and parent.startswith(stop + os.sep):
        if keep(os.path.relpath(parent, stop)):
            return
        try:
            os.rmdir(parent)
        except OSError:
            return
        parent = os.path.dirname(parent)
