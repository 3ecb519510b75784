"""The user-facing error family of atomtwin.

A user's mistake (a damaged file, a wrong config value, a missing label) raises an
:class:`InputError` whose message names the thing, the place (file, frame, line, key) and
the fix.  The ``atomtwin`` CLI prints such an error as one line and exits with status 2;
anything else is a bug and keeps its traceback.

The classes also derive from :class:`ValueError`, so code written against the earlier
``ValueError`` contract keeps working.
"""

from __future__ import annotations

__all__ = ["ConfigError", "FileFormatError", "InputError", "with_fix"]


class InputError(ValueError):
    """Wrong input from the user: the message says what, where, and how to fix it."""


class ConfigError(InputError):
    """A config file (YAML) or its values are wrong."""


class FileFormatError(InputError):
    """A trajectory or data file is damaged, truncated or not what its name says.

    Parameters
    ----------
    path
        The file (or store) being read.
    message
        What is wrong, including the place in the file (frame, line, variable).
    fix
        What the user can do; appended as ``Fix: ...``.
    """

    def __init__(self, path, message: str, fix: str | None = None):
        self.path = str(path)
        self.fix = fix
        super().__init__(with_fix(f"{self.path}: {message}", fix))


def with_fix(message: str, fix: str | None) -> str:
    """``message`` followed by ``Fix: fix`` (when a fix is given)."""
    return f"{message.rstrip()} Fix: {fix}" if fix else message
