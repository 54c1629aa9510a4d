"""Problems in a scenario file, each turned into one line ``FILE:LINE: FIELD.PATH: expected ..., got ...``.

Generic over the model: this module knows YAML positions and pydantic errors, ``chaos.scenario`` knows
the scenario. Line numbers come from the YAML node tree (``yaml.compose`` keeps the position of every
key and item); a location the file does not contain falls back to its nearest parent. Pydantic's own
messages are rewritten into the "expected ..., got ..." form, quoting the value as the user wrote it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

ROOT_LABEL = "scenario"
"""Field path shown for a problem with the file as a whole (its top level)."""

RULE_ERROR = "scenario_rule"
"""Pydantic error type of the rules between fields; their message is already in the one-line form."""

Loc = tuple[str | int, ...]


class ScenarioError(Exception):
    """A scenario file that cannot be used; ``problems`` holds one line per problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def rule_error(title: str, problems: list[tuple[Loc, str, Any]]) -> ValidationError:
    """A ``ValidationError`` whose errors sit at the given locations (relative to the model raising it).

    Raised from a validator, pydantic keeps these locations and prefixes the model's own, which is what
    lets a rule between fields point at the one field to change instead of at the whole model.
    """
    return ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError(RULE_ERROR, "{message}", {"message": message}),
                loc=loc,
                input=value,
            )
            for loc, message, value in problems
        ],
    )


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file: the data and the node tree that remembers where each value was written."""

    data: Any
    root: yaml.Node | None


def in_line_order(problems: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Problems sorted by line, each reported once (pydantic can report one spot twice)."""
    return sorted(dict.fromkeys(problems), key=lambda item: item[0])


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse once into both the data and the node tree; a syntax error is one line at its line."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(part for part in (exc.context, exc.problem) if part) or "a syntax error"
        raise ScenarioError([f"{file}:{line}: {ROOT_LABEL}: expected valid YAML, got {what}"]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([f"{file}:1: {ROOT_LABEL}: expected valid YAML, got {exc}"]) from None
    finally:
        loader.dispose()
    return YamlDocument(data=data, root=root)


def duplicate_keys(node: yaml.Node | None, path: Loc) -> Iterator[tuple[int, str]]:
    """Keys written twice in one mapping: YAML keeps the last silently, which hides mistakes."""
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                line = key.start_mark.line + 1
                if key.value in first:
                    yield (
                        line,
                        f"{field_path((*path, key.value))}: expected each key once, "
                        f"got {key.value!r} again (first on line {first[key.value]})",
                    )
                else:
                    first[key.value] = line
                yield from duplicate_keys(value, (*path, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from duplicate_keys(item, (*path, i))


def line_of(root: yaml.Node | None, loc: Loc) -> int:
    """1-based line of the deepest node of ``loc`` found in the tree; a key's line for mapping entries.

    A location the file does not contain (a missing key, a default value) falls back to its nearest
    parent that it does contain, which is where the fix goes.
    """
    if root is None:
        return 1
    node, line = root, root.start_mark.line + 1
    for segment in loc:
        if isinstance(node, yaml.MappingNode):
            found = None
            for key, value in node.value:  # the last of duplicate keys wins, as in the loaded data
                if isinstance(key, yaml.ScalarNode) and key.value == str(segment):
                    found = (key, value)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(segment, int)
            and 0 <= segment < len(node.value)
        ):
            node = node.value[segment]
            line = node.start_mark.line + 1
        else:
            break
    return line


# --- turning pydantic errors into one line each -----------------------------------------------------


def field_path(loc: Loc) -> str:
    """``("faults", 1, "at")`` -> ``faults[1].at``; the empty location is the whole file."""
    text = ""
    for segment in loc:
        if isinstance(segment, int):
            text += f"[{segment}]"
        else:
            text += f".{segment}" if text else str(segment)
    return text or ROOT_LABEL


def show_value(value: Any) -> str:
    """A value as the user wrote it, or what kind of thing it is when it is a structure."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


MISSING = object()


def value_at(data: Any, loc: Loc) -> Any:
    """The raw value the file holds at ``loc``, or ``MISSING``."""
    for segment in loc:
        in_mapping = isinstance(data, dict) and segment in data
        in_list = isinstance(data, list) and isinstance(segment, int) and 0 <= segment < len(data)
        if not (in_mapping or in_list):
            return MISSING
        data = data[segment]
    return data


_BOUNDS = {
    "greater_than": ("gt", "a value above {}"),
    "greater_than_equal": ("ge", "a value of at least {}"),
    "less_than": ("lt", "a value below {}"),
    "less_than_equal": ("le", "a value of at most {}"),
}
_KINDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "model_type": "a mapping",
    "dict_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}


def describe(error: ErrorDetails, data: Any, keys_at: Callable[[Loc], list[str]]) -> str:
    """``FIELD.PATH: what was expected, got what`` for one pydantic error.

    ``data`` is the file's data, to quote values as written; ``keys_at(loc)`` lists the keys the
    mapping at ``loc`` accepts, to name them when an unknown key is found there.
    """
    loc = tuple(error["loc"])
    kind, ctx = error["type"], error.get("ctx") or {}
    raw = value_at(data, loc)
    got = show_value(raw if raw is not MISSING else error.get("input"))
    if kind == RULE_ERROR:
        return f"{field_path(loc)}: {error['msg']}"
    if kind == "missing":
        return f"{field_path(loc)}: expected a value (required), got nothing"
    if kind == "extra_forbidden":
        allowed = keys_at(loc[:-1])
        expected = f"one of the keys {', '.join(allowed)}" if allowed else "no such key"
        return f"{field_path(loc)}: expected {expected}, got unknown key {str(loc[-1])!r}"
    if kind == "literal_error":
        return f"{field_path(loc)}: expected {ctx.get('expected', 'one of the allowed values')}, got {got}"
    if kind in _BOUNDS:
        key, template = _BOUNDS[kind]
        return f"{field_path(loc)}: expected {template.format(_number(ctx.get(key)))}, got {got}"
    if kind in _KINDS:
        return f"{field_path(loc)}: expected {_KINDS[kind]}, got {got}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if message.startswith("expected"):
        return f"{field_path(loc)}: {message}"
    return f"{field_path(loc)}: expected a valid value ({message[:1].lower()}{message[1:]}), got {got}"


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
