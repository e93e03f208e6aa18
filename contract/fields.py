"""Declared fields: one table per contract class gives its validation and its JSON Schema.

A contract class (a scenario section, a report) is a frozen dataclass whose attributes
are `Spec`s: the field's kind (integer, number, boolean, text, one of a set of values
(or text of a pattern beside them), a list, a nested class, a tagged step), its default,
its bounds and its description. The `record` decorator turns the table into dataclass
fields; `validate` checks a raw mapping against it and `class_schema` writes it as JSON
Schema, so the two cannot disagree.

Validation follows pydantic 2's lax mode, which the contract used before it was pure
Python, so every message a user saw is still the same: numbers may come as numeric
strings, an integer may come as an integral float, booleans as `yes`/`off`/0/1, every
problem of a mapping is collected (fields in declaration order, then unknown keys in
input order), and a class's cross-field rule (`check_rules`) runs only when its fields
are valid. `describe` renders a problem as the one line the command-line tools print,
adding the word a misspelt key or choice most likely meant (difflib), so the messages are
pydantic's plus that hint.
Standard library only: the browser build of the simulator validates scenarios with it.
"""

from __future__ import annotations

import collections
import dataclasses
import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Spec:
    """One field: its kind, default, bounds and description."""

    kind: str  # int, float, bool, str, choice, list, record, mapping, step
    default: Any = REQUIRED
    factory: Callable[[], Any] | None = None
    description: str | None = None
    nullable: bool = False
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    min_length: int | None = None
    choices: tuple[Any, ...] = ()
    # A choice field may also take any text matching `pattern` (a regular expression of
    # the whole value; the schema anchors it), which `pattern_label` names in messages.
    pattern: str | None = None
    pattern_label: str = ""
    item: Spec | None = None  # list items
    record: type | None = None  # nested class
    variants: tuple[type, ...] = ()  # step: classes of one field each, the field is the tag
    list_check: Callable[[list[Any]], str | None] | None = None  # before the items
    # A scenario's numbers are finite; a report's floats may be NaN or infinite (a ratio
    # of nothing), as they could before the contract was pure, and are written as null.
    finite: bool = True

    @property
    def required(self) -> bool:
        return self.default is REQUIRED and self.factory is None


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, where it is, and what was there."""

    loc: tuple[Any, ...]
    kind: str  # missing, extra, record_type, value_error (a rule), or a conversion's error
    message: str
    input: Any
    allowed: tuple[str, ...] = ()  # unknown keys: the mapping's fields; a bad choice: the choices


def record(cls: type) -> type:
    """A frozen dataclass whose `Spec` attributes become keyword-only fields."""
    for name, value in list(vars(cls).items()):
        if isinstance(value, Spec):
            extra: dict[str, Any] = {}
            if value.factory is not None:
                extra["default_factory"] = value.factory
            elif value.default is not REQUIRED:
                extra["default"] = value.default
            setattr(cls, name, dataclasses.field(metadata={"spec": value}, **extra))
    # The schema describes a class by its own docstring; dataclass invents one otherwise.
    cls.__schema_doc__ = vars(cls).get("__doc__")  # type: ignore[attr-defined]
    return dataclass(frozen=True, kw_only=True)(cls)


def specs(cls: type) -> dict[str, Spec]:
    """The field table of a record class, in declaration order."""
    return {f.name: f.metadata["spec"] for f in dataclasses.fields(cls)}


# ---------------------------------------------------------------------------------------
# Validation

# pydantic-core converts through a 64-bit integer: beyond it a number is "too large".
_I64 = 2**63
# Integer text as pydantic reads it: a sign, digits grouped by single underscores, and
# an optional all-zero fraction ("1.00" is 1, "1." and "1.5" are not integers).
_INT_TEXT = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*(?:\.0+)?")
_TRUE = frozenset(("1", "on", "t", "true", "y", "yes"))
_FALSE = frozenset(("0", "off", "f", "false", "n", "no"))
_SEQUENCES = (list, tuple, set, frozenset, collections.deque)


class _Bad(Exception):
    """A value error inside one field: (kind, message)."""


def _number_text(value: str | bytes | bytearray) -> str:
    text = value.decode() if isinstance(value, bytes | bytearray) else value
    return text.strip()


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad("finite_number", "Input should be a finite number")
        if not value.is_integer():
            raise _Bad(
                "int_from_float",
                "Input should be a valid integer, got a number with a fractional part",
            )
        if not -_I64 <= value < _I64:
            raise _Bad(
                "int_parsing_size",
                "Unable to parse input string as an integer, exceeded maximum size",
            )
        return int(value)
    if isinstance(value, str | bytes):
        try:
            text = _number_text(value)
        except UnicodeDecodeError:
            text = "?"
        if text.isascii() and _INT_TEXT.fullmatch(text):
            return int(text.split(".")[0])
        raise _Bad(
            "int_parsing", "Input should be a valid integer, unable to parse string as an integer"
        )
    raise _Bad("int_type", "Input should be a valid integer")


def _to_float(value: Any, finite: bool = True) -> float:
    try:
        if isinstance(value, bool | int | float):
            number = float(value)
        elif isinstance(value, str | bytes):
            text = _number_text(value)
            if not text.isascii():  # float() reads other scripts' digits; JSON does not
                raise ValueError(text)
            number = float(text)
        else:
            raise _Bad("float_type", "Input should be a valid number")
    except OverflowError:
        number = math.inf
    except ValueError:
        raise _Bad(
            "float_parsing", "Input should be a valid number, unable to parse string as a number"
        ) from None
    if finite and not math.isfinite(number):
        raise _Bad("finite_number", "Input should be a finite number")
    return number


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        integral = isinstance(value, int) or (math.isfinite(value) and value.is_integer())
        if not integral or not -_I64 <= value < _I64:
            raise _Bad("bool_type", "Input should be a valid boolean")
        if value in (0, 1):
            return bool(value)
        raise _Bad("bool_parsing", "Input should be a valid boolean, unable to interpret input")
    if isinstance(value, str | bytes):
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise _Bad("bool_parsing", "Input should be a valid boolean, unable to interpret input")
    raise _Bad("bool_type", "Input should be a valid boolean")


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode()
        except UnicodeDecodeError:
            raise _Bad(
                "string_unicode",
                "Input should be a valid string, unable to parse raw data as a unicode string",
            ) from None
    raise _Bad("string_type", "Input should be a valid string")


def _to_choice(value: Any, spec: Spec) -> Any:
    choices = spec.choices
    if isinstance(choices[0], int):
        if isinstance(value, int) and not isinstance(value, bool) and not -_I64 <= value < _I64:
            raise _Bad(
                "int_parsing_size",
                "Unable to parse input string as an integer, exceeded maximum size",
            )
        if isinstance(value, int | float) and not isinstance(value, bool):
            for choice in choices:
                if value == choice:
                    return choice
    elif isinstance(value, str) and (
        value in choices or (spec.pattern and re.fullmatch(spec.pattern, value))
    ):
        return value
    words = [repr(c) for c in choices]
    listed = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
    if spec.pattern_label:
        listed = f"{', '.join(words)}, or {spec.pattern_label}"
    raise _Bad("literal_error", f"Input should be {listed}")


def _bound(x: float) -> str:
    """A bound as the messages print it: 1.0 as 1, 0.001 as 0.001."""
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _check_bounds(spec: Spec, number: float) -> None:
    if spec.gt is not None and not number > spec.gt:
        raise _Bad("greater_than", f"Input should be greater than {_bound(spec.gt)}")
    if spec.ge is not None and not number >= spec.ge:
        raise _Bad(
            "greater_than_equal", f"Input should be greater than or equal to {_bound(spec.ge)}"
        )
    if spec.le is not None and not number <= spec.le:
        raise _Bad("less_than_equal", f"Input should be less than or equal to {_bound(spec.le)}")


def _scalar(spec: Spec, value: Any) -> Any:
    if spec.kind == "int":
        number: Any = _to_int(value)
    elif spec.kind == "float":
        number = _to_float(value, spec.finite)
    elif spec.kind == "bool":
        return _to_bool(value)
    elif spec.kind == "choice":
        return _to_choice(value, spec)
    else:
        text = _to_str(value)
        if spec.min_length is not None and len(text) < spec.min_length:
            plural = "" if spec.min_length == 1 else "s"
            raise _Bad(
                "string_too_short",
                f"String should have at least {spec.min_length} character{plural}",
            )
        return text
    _check_bounds(spec, number)
    return number


def check(spec: Spec, value: Any, loc: tuple[Any, ...], problems: list[Problem]) -> Any:
    """`value` converted to the field's type; what is wrong goes into `problems`."""
    if value is None and spec.nullable:
        return None
    if spec.kind == "record":
        return validate(spec.record, value, loc, problems)  # type: ignore[arg-type]
    if spec.kind == "list":
        return _check_list(spec, value, loc, problems)
    if spec.kind == "mapping":
        if isinstance(value, Mapping):
            return dict(value)
        problems.append(Problem(loc, "dict_type", "Input should be a valid dictionary", value))
        return None
    if spec.kind == "step":
        return _check_step(spec, value, loc, problems)
    try:
        return _scalar(spec, value)
    except _Bad as bad:
        kind, message = bad.args
        allowed = tuple(map(str, spec.choices)) if kind == "literal_error" else ()
        problems.append(Problem(loc, kind, message, value, allowed))
        return None


def _check_list(spec: Spec, value: Any, loc: tuple[Any, ...], problems: list[Problem]) -> Any:
    if spec.list_check is not None and isinstance(value, _SEQUENCES):
        message = spec.list_check(value)
        if message is not None:
            problems.append(Problem(loc, "value_error", message, value))
            return None
    if not isinstance(value, _SEQUENCES):
        problems.append(Problem(loc, "list_type", "Input should be a valid list", value))
        return None
    start = len(problems)
    items = [check(spec.item, v, (*loc, i), problems) for i, v in enumerate(value)]  # type: ignore[arg-type]
    if len(problems) > start:
        return None
    if spec.min_length is not None and len(items) < spec.min_length:
        plural = "" if spec.min_length == 1 else "s"
        problems.append(
            Problem(
                loc,
                "too_short",
                f"List should have at least {spec.min_length} item{plural} after validation, "
                f"not {len(items)}",
                value,
            )
        )
        return None
    return items


def _check_step(spec: Spec, value: Any, loc: tuple[Any, ...], problems: list[Problem]) -> Any:
    """A tagged step: the one key of the mapping names its class."""
    if isinstance(value, spec.variants):
        return value
    tags = {dataclasses.fields(c)[0].name: c for c in spec.variants}
    found = [tag for tag in tags if isinstance(value, Mapping) and tag in value]
    if len(found) != 1:
        problems.append(
            Problem(
                loc, "union_tag_not_found", f"a step needs exactly one of {', '.join(tags)}", value
            )
        )
        return None
    return validate(tags[found[0]], value, loc, problems)


def validate(cls: type, value: Any, loc: tuple[Any, ...], problems: list[Problem]) -> Any:
    """An instance of record class `cls` from a mapping, or None with `problems` added."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        problems.append(
            Problem(
                loc,
                "record_type",
                f"Input should be a valid dictionary or instance of {cls.__name__}",
                value,
            )
        )
        return None
    table = specs(cls)
    start = len(problems)
    values = {}
    for name, spec in table.items():
        if name in value:
            values[name] = check(spec, value[name], (*loc, name), problems)
        elif spec.required:
            problems.append(Problem((*loc, name), "missing", "Field required", value))
    allowed = tuple(table)
    for key, item in value.items():
        if not isinstance(key, str):
            problems.append(Problem((*loc, key), "invalid_key", "Keys should be strings", key))
        elif key not in table:
            problems.append(
                Problem((*loc, key), "extra", "Extra inputs are not permitted", item, allowed)
            )
    if len(problems) > start:
        return None
    instance = cls(**values)
    rule = getattr(instance, "check_rules", None)
    message = rule() if rule is not None else None
    if message is not None:
        problems.append(Problem(loc, "value_error", message, value))
        return None
    return instance


def close_match(text: str, allowed: tuple[str, ...]) -> str | None:
    """The allowed word `text` most likely misspells (`kernal_hz` → `kernel_hz`), or None.

    A name given without its unit (`rate` for `rate_hz`) counts as a misspelling too.
    """
    matches = difflib.get_close_matches(text, allowed, n=1, cutoff=0.8)
    if matches:
        return matches[0]
    with_unit = [word for word in allowed if word.startswith(f"{text}_")]
    return with_unit[0] if len(with_unit) == 1 else None


def describe(problem: Problem) -> str:
    """One line: `dotted.path: what is wrong (got VALUE)`, with a likely fix when there is one."""
    loc = ".".join(str(part) for part in problem.loc)
    message = problem.message
    if problem.kind == "extra":
        guess = close_match(str(problem.loc[-1]), problem.allowed)
        hint = f"; did you mean {guess}?" if guess else ""
        message = f"unknown key{hint} (allowed: {', '.join(problem.allowed)})"
    elif problem.kind == "missing":
        message = "required field is missing"
    elif problem.kind != "record_type" and not isinstance(problem.input, dict | list):
        message += f" (got {problem.input!r})"
        if problem.kind == "literal_error" and isinstance(problem.input, str):
            guess = close_match(problem.input, problem.allowed)
            message += f"; did you mean {guess}?" if guess else ""
    return f"{loc}: {message}" if loc else message


def first_problem(problems: list[Problem]) -> Problem:
    """The problem to tell first: the first one, unless it is a missing field that an
    unknown key beside it misspells (`duration:` for `duration_s`): then that key."""
    first = problems[0]
    if first.kind == "missing":
        for problem in problems:
            if (
                problem.kind == "extra"
                and problem.loc[:-1] == first.loc[:-1]
                and close_match(str(problem.loc[-1]), problem.allowed) == first.loc[-1]
            ):
                return problem
    return first


def summary(problems: list[Problem]) -> str:
    """The problem to tell first, and how many more there are."""
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return describe(first_problem(problems)) + more


def to_dict(value: Any, spec: Spec | None = None) -> Any:
    """A record (and the records, lists and mappings in it) as JSON-ready data, in field order.

    A number field holds an int where its default is one (`rate_hz: 100`); as data it is
    a float, as the schema says (pydantic's JSON mode did the same).
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_dict(getattr(value, f.name), f.metadata.get("spec"))
            for f in dataclasses.fields(value)
        }
    if isinstance(value, list | tuple):
        item = spec.item if spec is not None else None
        return [to_dict(v, item) for v in value]
    if isinstance(value, Mapping):
        return {k: to_dict(v) for k, v in value.items()}
    if spec is not None and spec.kind == "float" and type(value) is int:
        return float(value)
    return value


def type_label(spec: Spec) -> str:
    """The field's type as Python spells it (`int | None`, `list[Share]`), for the docs."""
    if spec.kind == "choice":
        label = f"Literal[{', '.join(repr(c) for c in spec.choices)}]"
    elif spec.kind == "list":
        label = f"list[{type_label(spec.item)}]"  # type: ignore[arg-type]
    elif spec.kind == "record":
        label = spec.record.__name__  # type: ignore[union-attr]
    elif spec.kind == "step":
        label = " | ".join(c.__name__ for c in spec.variants)
    elif spec.kind == "mapping":
        label = "dict[str, Any]"
    else:
        label = spec.kind
    return f"{label} | None" if spec.nullable else label


# ---------------------------------------------------------------------------------------
# JSON Schema


def _title(name: str) -> str:
    return name.title().replace("_", " ")


def _type_schema(spec: Spec, defs: dict[str, Any]) -> dict[str, Any]:
    """The schema of the value alone (no default, title or description)."""
    if spec.kind == "record":
        return {"$ref": f"#/$defs/{_define(spec.record, defs)}"}  # type: ignore[arg-type]
    if spec.kind == "step":
        return {"oneOf": [{"$ref": f"#/$defs/{_define(c, defs)}"} for c in spec.variants]}
    if spec.kind == "choice":
        kind = "integer" if isinstance(spec.choices[0], int) else "string"
        out: dict[str, Any] = {"enum": list(spec.choices), "type": kind}
        if spec.pattern:
            anchored = {"pattern": f"^(?:{spec.pattern})$", "type": "string"}
            out = {"anyOf": [out, anchored]}
    elif spec.kind == "list":
        out = {"items": _type_schema(spec.item, defs), "type": "array"}  # type: ignore[arg-type]
    else:
        names = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}
        out = {"type": names.get(spec.kind, "object")}
    for key, bound in (("minimum", spec.ge), ("exclusiveMinimum", spec.gt), ("maximum", spec.le)):
        if bound is not None:
            out[key] = bound
    if spec.min_length is not None:
        out["minLength" if spec.kind == "str" else "minItems"] = spec.min_length
    return out


def _field_schema(name: str, spec: Spec, defs: dict[str, Any]) -> dict[str, Any]:
    inner = _type_schema(spec, defs)
    out = {"anyOf": [inner, {"type": "null"}]} if spec.nullable else dict(inner)
    if spec.default is not REQUIRED:
        out["default"] = spec.default
    if spec.description is not None:
        out["description"] = spec.description
    if "$ref" not in out:  # pydantic titles every field but a reference to a class
        out["title"] = _title(name)
    return out


def _define(cls: type, defs: dict[str, Any]) -> str:
    if cls.__name__ not in defs:
        defs[cls.__name__] = {}  # placeholder: a class may refer to itself
        defs[cls.__name__] = class_schema(cls, defs)
    return cls.__name__


def class_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    """The object schema of one record class; the classes it uses go into `defs`."""
    table = specs(cls)
    out: dict[str, Any] = {"additionalProperties": False}
    doc = cls.__schema_doc__  # type: ignore[attr-defined]
    if doc:
        out["description"] = doc
    out["properties"] = {name: _field_schema(name, spec, defs) for name, spec in table.items()}
    required = [name for name, spec in table.items() if spec.required]
    if required:
        out["required"] = required
    out["title"] = cls.__name__
    out["type"] = "object"
    return out
