"""The ``atomtwin`` command line: one entry point, thin wrappers over the Python API.

Toolkit commands are registered here; engine commands (``train``, ``md``, ``scha``...) plug
in through the ``atomtwin.commands`` entry-point group, so the toolkit never imports the
engines.  Convention for every command: ``--json`` prints machine-readable results on
stdout (and nothing else there); progress and messages go to stderr.  Command modules
import their heavy dependencies inside the command function, so ``atomtwin --help`` and
toolkit commands start without loading torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import import_module
from importlib.metadata import entry_points

#: toolkit command modules, each with ``register(subparsers)``
TOOLKIT_COMMANDS = (
    "atomtwin.toolkit.cli.io_commands",
    "atomtwin.toolkit.dynamics.cli",
    "atomtwin.toolkit.environments.cli",
    "atomtwin.toolkit.spectra.cli",
    "atomtwin.toolkit.phonons.cli",
    "atomtwin.toolkit.phases.cli",
)


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _load(module: str):
    try:
        return import_module(module)
    except ModuleNotFoundError as err:
        if err.name and (module == err.name or module.startswith(err.name + ".")):
            return None  # that part is not in this installation
        raise


def build_parser(engine_commands: bool = True) -> argparse.ArgumentParser:
    """The full parser; ``engine_commands=False`` skips the engine plug-ins (which import
    torch), so toolkit commands start fast."""
    from atomtwin.toolkit import __version__

    parser = argparse.ArgumentParser(
        prog="atomtwin", description="Turn atomistic simulations into findings.",
    )
    parser.add_argument("--version", action="version", version=f"atomtwin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in TOOLKIT_COMMANDS:
        m = _load(mod)
        if m is not None:
            m.register(sub)
    for ep in sorted(entry_points(group="atomtwin.commands"), key=lambda e: e.name) if engine_commands else ():
        module, _, attr = ep.value.partition(":")
        m = _load(module)
        if m is None or not hasattr(m, attr):
            continue  # that engine is not part of this installation yet
        getattr(m, attr)(sub)
    return parser


def emit_json(obj) -> None:
    """Print a result as JSON on stdout (numpy scalars/arrays converted)."""
    import numpy as np

    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)

    json.dump(obj, sys.stdout, indent=2, default=default)
    sys.stdout.write("\n")


def _requested_command(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(engine_commands=False)
    choices = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})
    if _requested_command(argv) not in choices:  # an engine command, or help: load the plug-ins
        parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except (CLIError, FileNotFoundError, FileExistsError, ValueError, KeyError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"atomtwin {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"atomtwin {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
