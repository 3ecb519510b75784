"""The ``atomtwin`` command line: one entry point, thin wrappers over the Python API.

Toolkit commands are registered here; engine commands (``train``, ``md``, ``scha``...) plug
in through the ``atomtwin.commands`` entry-point group, so the toolkit never imports the
engines.  Convention for every command: ``--json`` prints machine-readable results on
stdout (and nothing else there); progress bars, warnings and errors go to stderr.  Command
modules import their heavy dependencies inside the command function, so ``atomtwin --help``
and toolkit commands start without loading torch.

Errors: a user's mistake raises an :class:`~atomtwin.toolkit.errors.InputError` (or one
of its subclasses) anywhere below a command; :func:`main` prints it as one line,
``atomtwin <command>: error: <message>``, and exits with status 2.  Missing or unreadable
paths (``FileNotFoundError``, ``IsADirectoryError``, ``PermissionError``...) are reported
the same way.  Any other exception is a bug and keeps its traceback.  Warnings raised while
a command runs are printed as one line, ``atomtwin <command>: warning: <message>``, and
collected: with ``--json`` they are also in the output, as the list ``"warnings"``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from importlib import import_module
from importlib.metadata import entry_points

from atomtwin.toolkit.errors import InputError

__all__ = ["CLIError", "build_parser", "cli_message", "emit_json", "main"]

#: toolkit command modules, each with ``register(subparsers)``
TOOLKIT_COMMANDS = (
    "atomtwin.toolkit.cli.io_commands",
    "atomtwin.toolkit.dynamics.cli",
    "atomtwin.toolkit.environments.cli",
    "atomtwin.toolkit.spectra.cli",
    "atomtwin.toolkit.phonons.cli",
    "atomtwin.toolkit.phases.cli",
    "atomtwin.toolkit.reactions.cli",
)

#: exit status of a user mistake (argparse's own convention)
EXIT_USAGE = 2

#: OS errors about a path the user gave: reported in one line, not as a traceback
PATH_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
               PermissionError)

#: API keyword -> command-line flag, for messages raised by the library but read on the
#: command line (``species_map=`` in a fix becomes ``--species-map``)
API_TO_FLAG = {
    "species_map": "--species-map",
    "data_file": "--data-file",
    "timestep_ps": "--timestep",
    "topology": "--topology",
    "units": "--units",
    "format": "--format",
    "overwrite": "--force",
    "resume": "--resume",
    "steps": "--steps",
}


class CLIError(InputError):
    """A user-facing error raised by a command itself: printed as one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``atomtwin <command>: error: <message> (see --help)``."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_one_line(message)} "
                              f"(see '{self.prog} --help')\n")


class _Registry:
    """The sub-parser action seen by the ``register`` functions, keeping the command names
    (so :func:`main` need not look into argparse's internals)."""

    def __init__(self, sub) -> None:
        self._sub = sub
        self.names: list[str] = []
        self.parsers: list[ArgumentParser] = []

    def add_parser(self, name: str, **kwargs):
        self.names.append(name)
        p = self._sub.add_parser(name, **kwargs)
        self.parsers.append(p)
        return p

    def add_common_options(self) -> None:
        """``--no-progress`` on every command (unless the command defines it itself)."""
        for p in self.parsers:
            try:
                p.add_argument("--no-progress", action="store_true",
                               help="no progress bars on stderr")
            except argparse.ArgumentError:
                pass  # the command has its own


#: third-party packages the engine commands need (the ``engines`` extra)
ENGINE_REQUIREMENTS = ("torch", "e3nn")


def _load(module: str):
    try:
        return import_module(module)
    except ModuleNotFoundError as err:
        if err.name and (module == err.name or module.startswith(err.name + ".")):
            return None  # that part is not in this installation
        raise


def _engines_missing(command: str, missing: str) -> str:
    return (f"'atomtwin {command}' needs {missing}, which is not installed. "
            "Fix: pip install 'atomtwin[engines]' (see the README for a CUDA build of torch).")


def _register_missing_engine(registry: _Registry, name: str, missing: str) -> None:
    """A command whose engine cannot load without ``missing``: it stays listed and says
    how to install what it needs."""
    p = registry.add_parser(name, help=f"(needs the engines extra: {missing} is not installed)",
                            add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)

    def refuse(args):
        raise InputError(_engines_missing(name, missing))

    p.set_defaults(func=refuse)


def _build(engine_commands: bool) -> tuple[ArgumentParser, list[str]]:
    from atomtwin.toolkit import __version__

    parser = ArgumentParser(prog="atomtwin", description="Turn atomistic simulations into findings.")
    parser.add_argument("--version", action="version", version=f"atomtwin {__version__}")
    registry = _Registry(parser.add_subparsers(dest="command", metavar="COMMAND"))
    for mod in TOOLKIT_COMMANDS:
        m = _load(mod)
        if m is not None:
            m.register(registry)
    plugins = entry_points(group="atomtwin.commands") if engine_commands else ()
    for ep in sorted(plugins, key=lambda e: e.name):
        module, _, attr = ep.value.partition(":")
        try:
            m = _load(module)
        except ModuleNotFoundError as err:
            if (err.name or "").split(".")[0] not in ENGINE_REQUIREMENTS:
                raise
            _register_missing_engine(registry, ep.name, err.name.split(".")[0])
            continue
        if m is None or not hasattr(m, attr):
            continue  # that engine is not part of this installation yet
        getattr(m, attr)(registry)
    registry.add_common_options()
    return parser, registry.names


def build_parser(engine_commands: bool = True) -> argparse.ArgumentParser:
    """The full parser; ``engine_commands=False`` skips the engine plug-ins (which import
    torch), so toolkit commands start fast."""
    return _build(engine_commands)[0]


#: warnings of the commands now running (innermost last): :func:`run_command` collects each
#: command's warnings here so that :func:`emit_json` can put them into the ``--json`` output
_WARNINGS: list[list[str]] = []


def emit_json(obj) -> None:
    """Print a result as JSON on stdout (numpy scalars/arrays converted).

    A dict result gains ``"warnings"``: the list of the command's warnings so far, one line
    each, as printed on stderr (empty when there were none), so that a script reading the
    JSON sees what a person reading the terminal sees.
    """
    import numpy as np

    if isinstance(obj, dict):
        seen = list(_WARNINGS[-1]) if _WARNINGS else []
        own = obj.get("warnings")
        obj = {**obj, "warnings": (list(own) if isinstance(own, (list, tuple)) else
                                   ([] if own is None else [str(own)])) + seen}

    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)

    json.dump(obj, sys.stdout, indent=2, default=default)
    sys.stdout.write("\n")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


_KEYWORD = re.compile(r"(?<![\w-])(" + "|".join(API_TO_FLAG) + r")=(True\b)?")


def cli_message(message: str) -> str:
    """A library message as read on the command line: one line, API keywords as flags
    (``species_map=`` -> ``--species-map``)."""
    text = _KEYWORD.sub(lambda m: API_TO_FLAG[m.group(1)] + ("" if m.group(2) else " "),
                        _one_line(message))
    return text.replace("  ", " ")


def _path_message(err: OSError) -> str:
    if err.filename is not None and err.strerror:
        return f"{err.strerror}: '{err.filename}'"
    return str(err)


def _requested_command(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    """Run ``atomtwin ARGV``; returns the exit status (0 ok, 2 user mistake, 130 interrupt)."""
    import os

    # the CLI writes figures to files: never open a window (a notebook's backend is untouched,
    # since this runs only from the command line or when a caller asks for main())
    os.environ.setdefault("MPLBACKEND", "Agg")
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, names = _build(engine_commands=False)
    if _requested_command(argv) not in names:  # an engine command, or help: load the plug-ins
        parser, names = _build(engine_commands=True)
    args, extra = parser.parse_known_args(argv)
    command = getattr(args, "command", None)
    if extra:
        where = f"atomtwin {command}" if command else "atomtwin"
        parser.exit(EXIT_USAGE, f"{where}: error: unrecognized arguments: {' '.join(extra)} "
                                f"(see '{where} --help')\n")
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    return run_command(command, args.func, args)


def run_command(command: str, func, args) -> int:
    """Call ``func(args)`` with the CLI's conventions: progress bars on stderr, warnings and
    user errors as one line on stderr, user errors exit 2."""
    from atomtwin.toolkit import progress

    collected: list[str] = []

    def show(message, category, filename, lineno, file=None, line=None):
        text = cli_message(str(message))
        collected.append(text)
        print(f"atomtwin {command}: warning: {text}", file=sys.stderr)

    import signal
    import threading

    was = progress.enabled()
    progress.enable(not getattr(args, "no_progress", False))
    _WARNINGS.append(collected)
    # Ctrl-C: recorded before KeyboardInterrupt is raised, so that one raised where Python
    # drops exceptions (a garbage-collector callback) is raised again by the next progress
    # step, and a command that still ran to its end reports the interrupt
    previous = None
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        def on_sigint(signum, frame):
            progress.note_interrupt()
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            status = int(func(args) or 0)
        if progress.interrupted():
            raise KeyboardInterrupt
        return status
    except InputError as err:
        print(f"atomtwin {command}: error: {cli_message(str(err))}", file=sys.stderr)
        return EXIT_USAGE
    except PATH_ERRORS as err:
        print(f"atomtwin {command}: error: {cli_message(_path_message(err))}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as err:
        missing = (err.name or "").split(".")[0]
        if missing not in ENGINE_REQUIREMENTS:
            raise
        print(f"atomtwin {command}: error: {_engines_missing(command, missing)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"atomtwin {command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        progress.clear_interrupt()
        _WARNINGS.pop()
        progress.enable(was)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
