"""Errors raised for bad input: each names the file, key, column or row and what was expected."""

from __future__ import annotations

import errno


class InputError(Exception):
    """Bad user input (params file, dataset, rubric). Holds one line per problem.

    The CLI prints each problem on its own line and exits with status 2.
    """

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class GenerationError(RuntimeError):
    """An LLM call failed after all retries; it never becomes a row of data."""


class StorageError(RuntimeError):
    """A file the study needs cannot be used (no space, read-only, no permission, a corrupt database).

    One line naming the path and the remedy; the CLI prints it and exits with status 1.
    """


#: errno values that are about the storage, not the program, with what to do about each.
STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on the device: free some space (or use --results on another disk) and run again",
    errno.EDQUOT: "disk quota exceeded: free some space (or use --results on another disk) and run again",
    errno.EROFS: "the file system is read-only: use --results on a writable disk",
    errno.EACCES: "permission denied: make it writable for this user, or use --results elsewhere",
    errno.EPERM: "operation not permitted (an immutable or append-only file? see lsattr): make it writable, "
                 "or use --results elsewhere",
}


def storage_problem(exc: BaseException, where: str | None = None) -> str | None:
    """One line for an ``OSError`` about the storage (no space, read-only, permission denied), naming the
    path (``where`` when the error names none: a write to an open file); None for any other error.
    Follows ``__cause__``/``__context__`` to the OSError at the root."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            path = exc.filename or where or ""
            return f"{path}: {STORAGE_ERRNOS[exc.errno]}" if path else STORAGE_ERRNOS[exc.errno]
        exc = exc.__cause__ or exc.__context__
    return None
