"""Writing files so that a reader sees the old file or the whole new one, never a part.

Every write goes to a temp file in the target's directory and is renamed over the target
(`os.replace` is atomic within one file system); a failure leaves no temp file behind.
"""

import contextlib
import os
import pathlib
import tempfile


@contextlib.contextmanager
def atomic_path(target: pathlib.Path):
    """Yields a temp path beside `target`; when the block ends without error it becomes `target`."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    # mkstemp makes the file private (0600); the target is read by others, such as the image's
    # non-root user reading the model trained into it as root.
    os.fchmod(fd, 0o644)
    os.close(fd)
    try:
        yield pathlib.Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(target: pathlib.Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
