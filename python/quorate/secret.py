"""Reading a cluster secret from a file: the one rule shared by the CLI and library users."""

from __future__ import annotations

import os
from typing import List, Tuple, Union

from ._core import MIN_SECRET_BYTES  # the runtime's rule (NodeConfig::new)
from .errors import ConfigError

__all__ = ["read_secret", "read_secrets", "MIN_SECRET_BYTES", "MAX_SECRET_FILE_BYTES"]

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

    ``quorate.read_secret`` exports it; the CLI's ``--secret-file`` reads with `read_secrets`,
    which is this function for a file of one line.
    """
    shown, data = _read_bounded(path)
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


def read_secrets(path: Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]) -> List[bytes]:
    """Reads one secret per line from the file at ``path``, for a rotation: ``Node(secret=[...])``
    signs with the first and accepts every one. A file of one line gives what `read_secret` gives.

    Each line ending (``"\\n"`` or ``"\\r\\n"``) ends a secret; the last line needs none. Raises
    ConfigError, naming the path and the line, for a file that cannot be read or is larger than
    64 KiB, an empty file, an empty line, or a secret shorter than 16 bytes. A secret holding a
    newline byte cannot be given this way (write it hex-encoded, or use `read_secret`).
    """
    shown, data = _read_bounded(path)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the file's final newline ends the last secret
    if not lines:
        raise ConfigError(f"secret file {shown!r}: is empty; a secret needs at least {MIN_SECRET_BYTES} bytes")
    secrets = []
    for number, line in enumerate(lines, 1):
        line = line[:-1] if line.endswith(b"\r") else line
        if len(line) < MIN_SECRET_BYTES:
            what = "is empty" if not line else f"holds {len(line)} bytes"
            raise ConfigError(
                f"secret file {shown!r}: line {number} {what}; a secret needs at least {MIN_SECRET_BYTES} bytes"
            )
        secrets.append(line)
    return secrets


def _read_bounded(path: Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]) -> Tuple[str, bytes]:
    """The file's bytes (at most `MAX_SECRET_FILE_BYTES`) and its path as shown in errors."""
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
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise ConfigError(f"secret file {shown!r}: larger than {MAX_SECRET_FILE_BYTES} bytes; is it the right file?")
    return shown, data
