"""The frozen-config base that every setting in compress_core uses, and the constants configs share.

In the style of open_lth's ``Hparams``: a config is a frozen dataclass whose fields carry help text. It checks
itself when built (``problems``, called from ``__post_init__``, as torchao's configs do), and it round-trips
through JSON, with a short hash of that JSON as the name of its cache entry. All of this is written here
once: a config class only declares its fields and its checks.

- ``to_dict`` gives JSON-ready values (tuples become lists, nested configs dicts); ``from_dict`` turns them
  back (lists become tuples again), checks each value's type against the field's annotation and names the
  field in its error message.
- ``to_json`` sorts keys, so equal settings always give the same string (a cache key, a download).
- ``hash`` is the first 16 hex digits of the SHA-256 of that JSON, with the class's cache ``version`` added
  when it has one (bump it to invalidate every cached entry of that kind). A field added after entries were
  cached is declared ``param(..., hash_default=False)``: while it holds its default it is left out of the
  hash (as open_lth leaves default hyperparameters out), so the old entries keep their names.
- Unknown keys: a class declared with ``unknown="ignore"`` skips them (older or newer JSON still loads);
  by default they are an error that names them.

Usage::

    @dataclass(frozen=True)
    class SweepConfig(Config, label="sweep"):
        \"\"\"A sparsity sweep.\"\"\"

        points: int = param(10, "how many sparsities to try")
        scope: str = param("layer", "'layer': each layer at the same rate; 'global': one ranking")

        def problems(self):
            if self.points < 1:
                yield "points must be ≥ 1"

    cfg = SweepConfig(points=5)
    SweepConfig.from_json(cfg.to_json()) == cfg    # True
    cfg.hash()                                    # 16 hex digits: a cache folder's name
    SweepConfig.help_text()["points"]             # 'how many sparsities to try'
    SweepConfig(points=0)                         # ValueError: Invalid sweep settings: points must be ≥ 1.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import reprlib
import types
import typing
from typing import Any, ClassVar, Iterable, Mapping

__all__ = ["SCOPES", "Config", "brief", "param", "read_json"]

# Where a pruning ranking is made: "layer" = each layer on its own at the same rate, "global" = one
# magnitude ranking across all pruned layers (Han et al. 2015 use per-layer thresholds; Frankle & Carbin both).
SCOPES = ("layer", "global")

_MISSING = dataclasses.MISSING

_BRIEF = reprlib.Repr()
_BRIEF.maxstring = _BRIEF.maxother = _BRIEF.maxlong = 60
_BRIEF.maxlist = _BRIEF.maxtuple = _BRIEF.maxdict = 6


def brief(value: Any) -> str:
    """``repr(value)`` cut to about 60 characters: a message quotes what it was given, never a forged megabyte."""
    return _BRIEF.repr(value)


# A JSON string, escapes included; an unterminated one runs to the end of the text, so the pattern never fails
# part-way and never backtracks: one linear pass over any text.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\[\s\S]?[^"\\]*)*(?:"|\Z)')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def read_json(text: str, what: str, *, max_chars: int, max_depth: int, max_containers: int | None = None) -> Any:
    """JSON ``text``, parsed only after its length, nesting depth and number of lists and mappings have been read
    off the raw text (linear time, no recursion; scratch memory under 5 bytes a character). ValueError in plain
    words naming ``what`` (e.g. "The recipe file") and the limit: a forged document nested 10,000 deep or a
    number of 5,000 digits is refused in milliseconds, never a RecursionError or MemoryError."""
    if len(text) > max_chars:
        raise ValueError(f"{what} is {len(text):,} characters long; the limit is {max_chars:,}.")
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if max_containers is not None and len(brackets) > 2 * max_containers:
        raise ValueError(f"{what} holds about {len(brackets) // 2:,} lists and mappings; the limit is "
                         f"{max_containers:,}.")
    if brackets:
        import numpy as np  # only for a text with brackets: this module is read at start-up

        codes = np.frombuffer(brackets.encode("ascii"), np.uint8)
        depth = int(np.cumsum(np.where((codes == 91) | (codes == 123), 1, -1).astype(np.int32)).max())
        if depth > max_depth:
            raise ValueError(f"{what} nests lists and mappings {depth:,} deep; the limit is {max_depth}.")
    try:
        return json.loads(text)
    except RecursionError:  # not reached: the depth was read above
        raise ValueError(f"{what} nests lists and mappings too deep; the limit is {max_depth}.") from None
    except ValueError as e:  # JSONDecodeError, or a number of more than 4,300 digits
        why = "a number in it has thousands of digits" if "digits" in str(e) else str(e).splitlines()[0][:120]
        raise ValueError(f"{what} is not JSON ({why}).") from None


def param(default: Any = _MISSING, help: str = "", *, factory: Any = _MISSING, hash_default: bool = True,
          **kwargs) -> Any:
    """A config field with help text: ``lr: float = param(1e-3, "learning rate")``.

    Args:
        default: the default value (leave out for a required field).
        help: one line saying what the field does; shown next to controls and in ``help_text()``.
        factory: a zero-argument callable making the default (for a nested config), instead of ``default``.
        hash_default: False for a field added after cache entries were written: at its default value it is
            left out of ``hash()`` (and ``cache_dict()``), so those entries stay valid.
        kwargs: passed on to ``dataclasses.field`` (``compare=``, ``repr=``...).
    """
    if not help:
        raise ValueError("Every config field needs help text.")
    if not hash_default and default is _MISSING and factory is _MISSING:
        raise ValueError("hash_default=False needs a default value.")
    return dataclasses.field(default=default, default_factory=factory, metadata={"help": help,
                             "hash_default": hash_default}, **kwargs)


class Config:
    """Base of frozen config dataclasses: validation hook, help text, JSON round trip and hash, written once.

    Subclass it under ``@dataclass(frozen=True)`` and declare fields with ``param``. Class keywords:

    - ``label``: problems are reported as "Invalid <label> settings: a; b." (without a label, each problem
      is a full sentence and they are joined by spaces);
    - ``version``: added to what ``hash`` digests and checked by ``from_dict`` when the input carries one;
    - ``unknown``: "error" (default) or "ignore", what ``from_dict`` does with keys that are not fields.

    Hooks: ``problems()`` yields what is wrong (nothing by default); ``canonical()`` returns field values
    to replace after validation, so that equal settings are equal objects (and share one cache entry).
    """

    _label: ClassVar[str | None] = None
    _version: ClassVar[int | None] = None
    _unknown: ClassVar[str] = "error"

    def __init_subclass__(cls, *, label: str | None = None, version: int | None = None, unknown: str = "error",
                          **kwargs):
        super().__init_subclass__(**kwargs)
        if unknown not in ("error", "ignore"):
            raise ValueError(f"unknown= must be 'error' or 'ignore' (got {unknown!r}).")
        cls._label, cls._version, cls._unknown = label, version, unknown

    # ---- validation ----------------------------------------------------------------------------------
    def __post_init__(self):
        problems = list(self.problems())
        if problems:
            if self._label:
                raise ValueError(f"Invalid {self._label} settings: " + "; ".join(problems) + ".")
            raise ValueError(" ".join(problems))
        for name, value in self.canonical().items():
            object.__setattr__(self, name, value)  # frozen: the one place a config changes, while being built

    def problems(self) -> Iterable[str]:
        """What is wrong with these settings, in plain words (override; nothing by default)."""
        return ()

    def canonical(self) -> Mapping[str, Any]:
        """Field values to put in place after validation, e.g. a sorted tuple (override; none by default)."""
        return {}

    # ---- help ----------------------------------------------------------------------------------------
    @classmethod
    def help_text(cls) -> dict[str, str]:
        """{field name: its help text}, in declaration order ("" for a field declared without ``param``)."""
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}

    # ---- serialization -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The settings as JSON-ready values: tuples as lists, nested configs as dicts."""
        return {f.name: _encode(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Config":
        """The config ``to_dict`` described; raises ValueError naming the field for any bad entry."""
        return cls._from_dict(d, cls.__name__)

    def to_json(self) -> str:
        """Sorted JSON: the same settings always give the same string (a cache key, a download)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{cls.__name__}: not valid JSON ({e}).") from None
        return cls.from_dict(d)

    def cache_dict(self) -> dict:
        """What ``hash`` digests: ``to_dict()`` plus ``"version"`` when the class has a cache version, less the
        ``hash_default=False`` fields that hold their default (nested configs likewise)."""
        d = {f.name: _encode(getattr(self, f.name), cache=True) for f in dataclasses.fields(self)
             if f.metadata.get("hash_default", True) or getattr(self, f.name) != _default(f)}
        if self._version is not None:
            d["version"] = self._version
        return d

    def hash(self) -> str:
        """16 hex digits of the SHA-256 of the sorted JSON of ``cache_dict()``: the name of a cache entry."""
        return hashlib.sha256(json.dumps(self.cache_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def _from_dict(cls, d: Any, where: str) -> "Config":
        if not isinstance(d, Mapping):
            raise ValueError(f"{where}: expected a mapping of field names to values, got {type(d).__name__}.")
        d = dict(d)
        if cls._version is not None and "version" in d:
            v = d.pop("version")
            if v != cls._version:
                raise ValueError(f"{where}: settings of version {brief(v)}; this code reads version {cls._version}.")
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(d) - set(fields))
        if unknown and cls._unknown == "error":
            raise ValueError(f"{where}: unknown field(s) {', '.join(map(brief, unknown[:5]))}"
                             f"{'…' if len(unknown) > 5 else ''}; "
                             f"the fields are {', '.join(fields)}.")
        missing = [n for n, f in fields.items() if n not in d
                   and f.default is _MISSING and f.default_factory is _MISSING]
        if missing:
            raise ValueError(f"{where}: missing required field(s) {', '.join(map(repr, missing))}.")
        hints = _hints(cls)
        return cls(**{n: _decode(hints.get(n, Any), d[n], f"{where}.{n}") for n in fields if n in d})


@functools.cache  # a class's annotations never change: resolving them (compiling each string) cost 1 ms a config
def _hints(cls: type) -> dict[str, Any]:
    """The resolved field annotations of ``cls`` (read them, never change them: they are shared)."""
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):  # an annotation that cannot be resolved is left unchecked
        return {}


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not _MISSING else f.default


def _encode(value: Any, cache: bool = False) -> Any:
    if isinstance(value, Config):
        return value.cache_dict() if cache else value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_encode(v, cache) for v in value]
    if isinstance(value, Mapping):
        return {k: _encode(v, cache) for k, v in value.items()}
    return value


_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _decode(tp: Any, value: Any, where: str) -> Any:
    """``value`` (from JSON) as the annotated type ``tp``: lists to tuples, dicts to nested configs."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for t in (a for a in args if a is not type(None)):
            try:
                return _decode(t, value, where)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(errors[0] if len(errors) == 1 else f"{where}: {brief(value)} matches none of {tp}.")
    if isinstance(tp, type) and issubclass(tp, Config):
        return value if isinstance(value, tp) else tp._from_dict(value, where)
    if tp in _NAMES:
        ok = (isinstance(value, bool) if tp is bool else
              isinstance(value, (int, float)) and not isinstance(value, bool) if tp is float else
              isinstance(value, tp) and not isinstance(value, bool))
        if not ok:
            raise ValueError(f"{where}: expected {_NAMES[tp]}, got {brief(value)}.")
        return value
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {brief(value)}.")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise ValueError(f"{where}: expected {len(args)} items, got {len(value)} ({brief(value)}).")
        return tuple(_decode(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(args, value))) if args \
            else tuple(value)
    if tp is dict or origin is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {brief(value)}.")
        return dict(value)
    return value
