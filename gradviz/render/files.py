"""Writing output files safely: never half a file, never a device replaced by a file."""

from __future__ import annotations

import os
import stat
import tempfile

from gradviz.errors import RenderError

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader never sees half a file.

    A regular file (or a new one) is written to a temporary file beside it and
    renamed over it; its permission bits are kept (a new file gets 0o644 less
    the umask).  A symlink is written through: its target is replaced, the link
    stays.  Anything else that exists (``/dev/null``, ``/dev/stdout``, a FIFO)
    is written in place: replacing it would swap a device for a plain file.
    """
    shown = os.fspath(path)
    try:
        existing: os.stat_result | None = os.stat(path)  # follows symlinks
    except FileNotFoundError:  # new file, or a dangling symlink: created at its target
        existing = None
    except OSError as exc:     # a symlink loop, a file used as a folder, ...
        raise RenderError(f"cannot write {shown}: {exc.strerror or exc}") from None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise RenderError(f"cannot write {shown}: it is a directory")
    real = os.path.realpath(path)
    if existing is not None and (not stat.S_ISREG(existing.st_mode)
                                 or not _same_file(real, existing)
                                 or _names_a_descriptor(shown)):
        # A device or FIFO; or an open descriptor (/dev/stdout, /proc/self/fd/N): replacing
        # the file behind it would leave the descriptor writing to a deleted file.
        _write_in_place(path, data)
        return
    _replace(real, shown, data, existing)


def _names_a_descriptor(path: str) -> bool:
    """Whether ``path`` goes through a process's descriptor table (/dev/std*, /dev/fd, /proc/*/fd)."""
    absolute = os.path.abspath(path)
    parts = absolute.split(os.sep)
    return (absolute.startswith(("/dev/fd/", "/dev/stdout", "/dev/stderr", "/dev/stdin"))
            or (len(parts) > 3 and parts[1] == "proc" and parts[3] == "fd"))


def _same_file(path: str, st: os.stat_result) -> bool:
    try:
        other = os.stat(path)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)


def _write_in_place(path: str | os.PathLike, data: bytes) -> None:
    try:
        with open(path, "ab") as fh:  # append: a descriptor may hold output already
            fh.write(data)
    except OSError as exc:
        raise RenderError(f"cannot write {os.fspath(path)}: {exc.strerror or exc}") from None


def _replace(real: str, shown: str, data: bytes, existing: os.stat_result | None) -> None:
    """Write ``real`` by a temporary file in its folder and an atomic rename."""
    directory = os.path.dirname(real) or "."
    try:
        # The name is cut short: the temporary name adds 14 characters to it, and a name
        # of up to 255 must still work.
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(real)[:100]}.", suffix=".tmp",
                                   dir=directory)
    except OSError as exc:
        raise RenderError(f"cannot write {shown}: {exc.strerror or exc} "
                          f"(is the folder {directory} there and writable?)") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        # mkstemp makes the file 0o600: give it what the file had, or a new file's mode.
        os.chmod(tmp, stat.S_IMODE(existing.st_mode) if existing is not None
                 else 0o644 & ~_umask())
        if existing is not None:
            _keep_owner(tmp, existing)
        os.replace(tmp, real)
    except BaseException as exc:  # Ctrl-C too: never leave the temporary file behind
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise RenderError(f"cannot write {shown}: {exc.strerror or exc}") from None
        raise


def _keep_owner(tmp: str, existing: os.stat_result) -> None:
    """Give the new file the old one's owner, where allowed (as root, say, under sudo)."""
    if not hasattr(os, "chown") or (existing.st_uid, existing.st_gid) == (os.geteuid(),
                                                                          os.getegid()):
        return
    try:
        os.chown(tmp, existing.st_uid, existing.st_gid)
    except OSError:  # not permitted: the file is ours, as any newly written file would be
        pass


def _umask() -> int:
    """The process umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status") as status:  # Linux: no window with another umask
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it
    os.umask(mask)
    return mask
