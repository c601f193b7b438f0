"""One line for any error a command ends with: what failed and which file, store or endpoint.

Errors mespot raises itself already say that; the rest (the operating system's, the
storage clients') are put in the same form. ``mespot --debug`` shows the traceback instead.
"""

from __future__ import annotations

from cluster.run.extract import ConfigConflict, RunAborted
from cluster.store import StoreError
from pipeline.vision.frames import FrameError

#: Raised by mespot with a message that is already the whole story.
OWN_ERRORS = (
    ValueError,
    ConfigConflict,
    FileExistsError,
    FrameError,
    StoreError,
    RunAborted,
)


def describe_error(e: BaseException) -> str:
    """The one line ``mespot <command>: ...`` prints for ``e``."""
    if isinstance(e, OWN_ERRORS) or (isinstance(e, OSError) and e.errno is None):
        return str(e)  # ours (an OSError without errno, e.g. "store ... has no features/")
    if isinstance(e, OSError) and e.filename is not None:
        where = e.filename if e.filename2 is None else f"{e.filename} -> {e.filename2}"
        return f"{e.strerror or type(e).__name__}: {where}"
    if isinstance(e, OSError | ConnectionError) or type(e).__module__.startswith(
        ("botocore", "aiobotocore", "s3fs")
    ):
        return f"{type(e).__name__}: {e}"
    return f"{type(e).__name__}: {e} (mespot --debug ... shows the traceback)"
