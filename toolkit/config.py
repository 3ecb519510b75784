"""The shared base of every YAML config (md, train, scha/tdscha, phase-diagram specs).

A config is a frozen pydantic v2 dataclass made with :func:`config_class`: unknown keys are
refused (the closest valid key is suggested), integers must be integers, numbers written
``1e-3`` are numbers, and every failure raises :class:`~atomtwin.toolkit.errors.ConfigError`
with one line naming the file, the key path, the problem and the fix::

    md.yaml: integrator.timestep: must be a number (got 'fast'). Fix: write a number, e.g. 0.001 or 1e-3.

The dataclass form keeps the Python API of plain dataclasses (``dataclasses.replace``,
``dataclasses.asdict``, keyword construction); a keyword constructed in Python gets the same
validation and the same one-line errors, named after the class instead of a file.

Paths: a field typed :data:`ConfigPath` is resolved against the YAML file's folder by
:func:`load` (an absolute path, or a config built in Python, is left as written).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pydantic
from atomtwin.toolkit.errors import ConfigError
from pydantic import AfterValidator, ConfigDict, Field, ValidationError, ValidationInfo

__all__ = [
    "ConfigPath", "Count", "Invalid", "NonNegFloat", "PositiveCount", "PositiveFloat", "config_class",
    "load", "load_yaml", "validate",
]

T = TypeVar("T")


# -- reusable field types -----------------------------------------------------------------
def _resolve(value: str, info: ValidationInfo) -> str:
    base = (info.context or {}).get("base") if info is not None else None
    if base is None or not value or Path(value).expanduser().is_absolute() or "://" in value:
        return value
    return str(Path(base) / Path(value).expanduser())


#: a file or folder path; relative paths are resolved against the YAML file's folder
ConfigPath = Annotated[str, AfterValidator(_resolve)]
#: an integer count >= 0 (steps, frames, epochs)
Count = Annotated[int, Field(ge=0)]
#: an integer count >= 1 (strides, batch sizes, layers)
PositiveCount = Annotated[int, Field(ge=1)]
#: a number > 0 (times, temperatures of a thermostat, learning rates)
PositiveFloat = Annotated[float, Field(gt=0)]
#: a number >= 0
NonNegFloat = Annotated[float, Field(ge=0)]


class Invalid(ValueError):
    """Raised inside a config validator for a rule that ties several keys together.

    Parameters
    ----------
    key
        Dotted key path (relative to the class being validated) the message points at.
    problem
        What is wrong.
    fix
        What to write instead.
    """

    def __init__(self, key: str, problem: str, fix: str | None = None):
        self.key, self.problem, self.fix = key, problem, fix
        super().__init__(f"{key}: {problem}")


# -- the decorator --------------------------------------------------------------------------
_SETTINGS = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


def config_class(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen pydantic dataclass whose construction errors are ConfigErrors."""
    pcls = pydantic.dataclasses.dataclass(frozen=True, config=_SETTINGS)(cls)
    init = pcls.__init__

    def __init__(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except ValidationError as err:
            raise ConfigError(describe(err, pcls, pcls.__name__)) from None

    __init__.__doc__ = init.__doc__
    pcls.__init__ = __init__
    return pcls


def validate(cls: type[T], data: Any, *, source: str | Path | None = None,
             base: str | Path | None = None) -> T:
    """An instance of the config class ``cls`` from a mapping, as :func:`load` does.

    Parameters
    ----------
    cls
        A class made with :func:`config_class`.
    data
        Mapping of keys to values (as read from YAML).
    source
        Names the origin in messages (the file); default the class name.
    base
        Folder against which relative :data:`ConfigPath` values are resolved.
    """
    src = str(source) if source is not None else cls.__name__
    if not isinstance(data, dict):
        raise ConfigError(f"{src}: the config must be a mapping of keys to values, not "
                          f"{type(data).__name__}. Fix: write `key: value` lines.")
    ctx = {"base": str(base)} if base is not None else None
    try:
        return pydantic.TypeAdapter(cls).validate_python(data, context=ctx)
    except ValidationError as err:
        raise ConfigError(describe(err, cls, src)) from None


def load(cls: type[T], path: str | Path, *, prepare: Callable[[dict], dict] | None = None) -> T:
    """Read the YAML file ``path`` into the config class ``cls``.

    Relative paths (fields typed :data:`ConfigPath`) are resolved against the file's folder;
    ``prepare`` may rewrite the raw mapping first (legacy layouts).
    """
    path = Path(path)
    data = load_yaml(path)
    if prepare is not None and isinstance(data, dict):
        data = prepare(data)
    return validate(cls, data, source=path, base=path.resolve().parent)


# -- YAML ----------------------------------------------------------------------------------
def _yaml_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader reading ``1e-3`` as a number (YAML 1.2) and refusing duplicate keys."""

    # YAML 1.1 wants a dot and a signed exponent (1.0e-3); YAML 1.2 (and every human) does not
    float_re = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                              |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                              |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                              |[-+]?\.(?:inf|Inf|INF)
                              |\.(?:nan|NaN|NAN))$""", re.X)
    Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    for first in "-+0123456789.":
        Loader.yaml_implicit_resolvers[first] = [
            (tag, r) for tag, r in Loader.yaml_implicit_resolvers.get(first, [])
            if tag != "tag:yaml.org,2002:float"]
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", float_re, list("-+0123456789."))

    def mapping(loader, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: the key '{key}' is given twice "
                                  f"(first on line {seen[key]}). Fix: keep one of them.")
            seen[key] = key_node.start_mark.line + 1
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                           lambda loader, node: dict(mapping(loader, node, deep=True)))
    return Loader


def load_yaml(path: str | Path) -> Any:
    """The content of a YAML file (numbers such as ``1e-3`` read as numbers).

    Raises
    ------
    ConfigError
        The file is missing, unreadable, or not valid YAML (the line is named).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ConfigError(f"{path}: the config file {what}. Fix: give the path of a YAML file.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the config ({err}). Fix: give a UTF-8 YAML file.") from None
    try:
        data = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 (a SafeLoader subclass)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}: {where}not valid YAML ({problem}). "
                          "Fix: check the indentation and the `key: value` syntax there.") from None
    return {} if data is None else data


# -- messages --------------------------------------------------------------------------------
def _unwrap(tp: Any) -> Any:
    """The dataclass / container type behind Optional, Annotated."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _type_at(cls: Any, loc: tuple) -> Any:
    """The annotation found by following ``loc`` (field names, keys, indices) from ``cls``."""
    tp = cls
    for part in loc:
        tp = _unwrap(tp)
        if dataclasses.is_dataclass(tp) and isinstance(part, str):
            hints = typing.get_type_hints(tp, include_extras=True)
            if part not in hints:
                return None
            tp = hints[part]
        elif typing.get_origin(tp) in (dict, Mapping) and typing.get_args(tp):
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) in (tuple, list) and typing.get_args(tp):
            args = typing.get_args(tp)
            if typing.get_origin(tp) is list or (len(args) == 2 and args[1] is Ellipsis):
                tp = args[0]
            elif isinstance(part, int) and part < len(args):
                tp = args[part]
            else:
                return None
        else:
            return None
    return _unwrap(tp)


def valid_keys(cls: Any, loc: tuple = ()) -> list[str]:
    """The keys allowed at ``loc`` inside the config class ``cls`` (empty when free-form)."""
    tp = _type_at(cls, loc)
    if dataclasses.is_dataclass(tp):
        hidden = getattr(tp, "_hidden_keys", ())
        return [f.name for f in dataclasses.fields(tp) if f.init and f.name not in hidden]
    return []


def closest(word: str, choices) -> str | None:
    """The choice closest to ``word`` (difflib), or None when none is close."""
    word, choices = str(word), [str(c) for c in choices]
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if match:
        return match[0]
    # an abbreviation (temps -> temperatures): same first three letters, the rest in order
    def abbreviates(c: str) -> bool:
        rest = iter(c.lower())
        return c.lower()[:3] == word.lower()[:3] and all(ch in rest for ch in word.lower())

    found = sorted((c for c in choices if len(word) >= 3 and abbreviates(c)), key=len)
    return found[0] if found else None


def unknown_key(source: str, where: str, key: str, allowed) -> ConfigError:
    """The ConfigError for an unknown ``key`` at ``where`` (a key path, '' for the top)."""
    allowed = sorted(allowed)
    near = closest(key, allowed)
    path = f"{where}.{key}" if where else str(key)
    fix = (f"did you mean '{near}'?" if near else "remove it or use a valid key") + \
        f" (valid keys here: {', '.join(allowed)})"
    return ConfigError(f"{source}: {path}: unknown key. Fix: {fix}.")


def key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _one(err: dict, cls: Any, source: str) -> str:
    kind, loc, ctx = err["type"], tuple(err["loc"]), err.get("ctx") or {}
    value = err.get("input")
    exc = ctx.get("error")
    if isinstance(exc, Invalid):
        where = key_path(loc + tuple(exc.key.split("."))) if exc.key else key_path(loc)
        fix = f" Fix: {_end(exc.fix)}" if exc.fix else ""
        return f"{source}: {where}: {_end(exc.problem)}{fix}"
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        return str(unknown_key(source, key_path(loc[:-1]), loc[-1], valid_keys(cls, loc[:-1])))
    where = key_path(loc) or "(top level)"
    if kind == "missing" or kind == "missing_argument":
        return f"{source}: {where}: required key missing. Fix: add `{loc[-1]}: <value>`."
    if kind in ("int_from_float", "int_parsing", "int_type"):
        problem, fix = f"must be a whole number (got {_show(value)})", "write an integer such as 20"
    elif kind in ("float_parsing", "float_type", "finite_number"):
        problem, fix = f"must be a finite number (got {_show(value)})", \
            "write a number, e.g. 0.001 or 1e-3"
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
              "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()))
        bound = int(bound) if float(bound).is_integer() else bound
        problem = f"must be {op} {bound} (got {_show(value)})"
        fix = {">": "give a positive value", ">=": "give a value >= 0 (it cannot be negative)"}.get(
            op, f"give a value {op} {bound}") if bound == 0 else f"give a value {op} {bound}"
    elif kind in ("literal_error", "enum"):
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        near = closest(value, options) if isinstance(value, str) else None
        problem = f"{_show(value)} is not one of {', '.join(options)}"
        fix = f"did you mean '{near}'?" if near else f"use one of {', '.join(options)}"
    elif kind in ("bool_parsing", "bool_type"):
        problem, fix = f"must be true or false (got {_show(value)})", "write true or false"
    elif kind in ("string_type",):
        problem, fix = f"must be a text (got {_show(value)})", "write the value as a string"
    elif kind in ("dict_type", "dataclass_type", "model_type", "dataclass_exact_type"):
        problem, fix = f"must be a mapping of keys to values (got {_show(value)})", \
            "write it as `key: value` lines indented under it"
    elif kind in ("tuple_type", "list_type", "too_short", "too_long", "iterable_type"):
        problem, fix = err["msg"].lower() + f" (got {_show(value)})", "write a list such as [1, 2]"
    elif kind == "value_error" and exc is not None:
        problem, fix = str(exc).rstrip("."), None
        if " Fix: " in problem:
            problem, fix = problem.split(" Fix: ", 1)
    else:
        problem, fix = err["msg"] + f" (got {_show(value)})", None
    return f"{source}: {where}: {_end(problem)}" + (f" Fix: {_end(fix)}" if fix else "")


def _end(text: str) -> str:
    text = str(text).strip()
    return text if text.endswith((".", "?", "!")) else text + "."


def describe(err: ValidationError, cls: Any, source: str) -> str:
    """One line for a pydantic ValidationError: file, key path, problem, fix (first error
    in full; the count of further errors appended)."""
    errors = err.errors(include_url=False)
    # an unknown key usually explains a missing one (a typo): name it first
    errors.sort(key=lambda e: e["type"] not in ("unexpected_keyword_argument", "extra_forbidden"))
    line = _one(errors[0], cls, source)
    if len(errors) > 1:
        line += f" ({len(errors) - 1} more problem{'s' if len(errors) > 2 else ''} in this config.)"
    return line.replace("\n", " ")
