"""Reading a cluster secret from a file: the one rule shared by the CLI and library users."""

from __future__ import annotations

import os
from typing import Union

from ._core import MIN_SECRET_BYTES  # the runtime's rule (NodeConfig::new)
from .errors import ConfigError

__all__ = ["read_secret", "MIN_SECRET_BYTES", "MAX_SECRET_FILE_BYTES"]

#: A longer file is refused rather than read whole (``/dev/zero`` or a wrong path must not hang).
MAX_SECRET_FILE_BYTES = 64 * 1024


def read_secret(path: Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]) -> bytes:
    """Reads a cluster secret from the file at ``path``, for ``Node(secret=...)``.

    The secret is the file's bytes with ONE trailing line ending (``"\\n"`` or ``"\\r\\n"``)
    removed, so a file written by ``echo my-cluster-secret > f`` (or a text editor) holds the same
    secret as one written without a newline. Nothing else is stripped: leading and inner
    whitespace, and any second trailing newline, stay part of the secret, so every member reads the
    same bytes from the same file.

    Raises ConfigError, naming the path, if the file cannot be read (with the operating system's
    reason), if what remains is shorter than 16 bytes (empty included), or if the file is larger
    than 64 KiB (it is not read whole).

    The CLI's ``--secret-file`` uses this function; ``quorate.read_secret`` exports it.
    """
    try:
        fspath = os.fspath(path)
    except TypeError:
        raise ConfigError(f"secret file: expected a path (str or os.PathLike), got {path!r}") from None
    shown = os.fsdecode(fspath)
    try:
        with open(fspath, "rb") as f:
            data = f.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as e:
        reason = e.strerror or str(e)
        raise ConfigError(f"secret file {shown!r}: cannot be read: {reason}") from None
    except ValueError as e:  # e.g. a NUL byte in the path
        raise ConfigError(f"secret file {shown!r}: not a usable path: {e}") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise ConfigError(f"secret file {shown!r}: larger than {MAX_SECRET_FILE_BYTES} bytes; is it the right file?")
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if len(data) < MIN_SECRET_BYTES:
        what = "is empty" if not data else f"holds {len(data)} bytes"
        raise ConfigError(
            f"secret file {shown!r}: {what} (not counting one trailing newline); "
            f"a secret needs at least {MIN_SECRET_BYTES} bytes"
        )
    return data
