"""Request templates written for each tool (`requests.yaml` beside the schemas): format, checks
and loading.

A template is a request a person would type, with slots for argument values (Chatito / SNIPS
style; the format is documented in `data/README.md`, section "Request templates"):

- `{param}`: a slot, filled with a value of the top-level parameter in one of its surface forms;
- `(a|b|)`: an alternation, one branch chosen (an empty branch is allowed);
- `[text](param=value)`: literal text that fixes `param` to `value` (see `fixed_value`), e.g.
  `[in Fahrenheit](units=imperial)`; `[](param=value)` fixes a value without text.

A tool's optional `follow_ups` are the later steps of a chain, by the parameter that takes a value
from the previous call's result: clauses that follow "then" or "finally" ("translate it into
[German](target_language=de)"), which never say that parameter. A tool that has them takes chained
values in the listed parameters only (`{}`: in none), so links a person would not make ("list the
folder at the path of the zip just written") are not drawn.

The call's arguments are exactly the slots and annotations of the chosen expansion. Loading checks
every template against the catalogue (unknown tools and parameters, required parameters missing
from some expansion, a parameter set twice, boolean slots, glued slots, `values:` entries that
break the schema) and reports every problem with file, tool and template.

Deliberately left out: rendering (`template_render`), choosing which tool a request is for
(`examples`) and phrasing for tools without templates (`queries`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Union

import yaml

from toolmodal.calls import check_value
from toolmodal.datagen.values import item_param
from toolmodal.ingest.loader import REQUESTS_FILE
from toolmodal.schema import Catalogue, Param, Tool

_NAME = re.compile(r"[A-Za-z_][\w.\-]*")
_SPECIAL = "{}()[]|\\"
MAX_EXPANSIONS = 5000


class TemplateError(ValueError):
    """Malformed or inconsistent request templates; the message lists every problem found."""


@dataclass(frozen=True)
class Slot:
    """`{name}`: a value of parameter `name` goes here."""

    name: str


@dataclass(frozen=True)
class Fixed:
    """`[text](param=value)`: `text` is said, `param` takes `value` (as written, see
    `fixed_value`)."""

    param: str
    value: str
    text: tuple[Node, ...]


@dataclass(frozen=True)
class Choice:
    """`(a|b|c)`: one branch is said."""

    branches: tuple[tuple[Node, ...], ...]


Node = Union[str, Slot, Fixed, Choice]  # noqa: UP007 (a forward reference in a runtime alias)


@dataclass(frozen=True)
class ToolTemplates:
    """The parsed templates of one tool and its optional realistic values per parameter."""

    tool: str
    templates: tuple[tuple[Node, ...], ...]
    sources: tuple[str, ...]
    values: dict[str, list[Any]]
    follow_ups: dict[str, tuple[tuple[Node, ...], ...]] | None = None

    def follow_up(self, param: str) -> ToolTemplates | None:
        """The follow-up clauses for a value of `param` from the previous result, as templates
        to render; None when there are none."""
        if not self.follow_ups or param not in self.follow_ups:
            return None
        return replace(self, templates=self.follow_ups[param], follow_ups=None)

    def takes_chained(self, param: str) -> bool:
        """Whether a chain may pass a result's value into `param`: always, unless the tool
        lists its follow-ups (then only the listed parameters)."""
        return self.follow_ups is None or param in self.follow_ups


# ---------------------------------------------------------------------------------- parsing

def parse_template(text: str) -> tuple[Node, ...]:
    """Parse one template string into nodes.

    Raises:
        TemplateError: Naming the position and the problem (unbalanced brackets, empty slot,
            `[text]` without `(param=value)`, `|` outside an alternation...).
    """
    nodes, end = _sequence(text, 0, "", in_fixed=False)
    if end != len(text):
        raise TemplateError(f"unexpected {text[end]!r} at column {end + 1}")
    return nodes


def _sequence(text: str, i: int, stops: str, in_fixed: bool) -> tuple[tuple[Node, ...], int]:
    """Nodes from `i` up to (not including) the first unescaped character of `stops`."""
    nodes: list[Node] = []
    literal = ""
    while i < len(text) and text[i] not in stops:
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            literal, i = literal + text[i + 1], i + 2
            continue
        if char not in "{([":
            if char in _SPECIAL:
                raise TemplateError(f"unexpected {char!r} at column {i + 1}"
                                    + (" ('|' only separates branches inside '(...)')"
                                       if char == "|" else ""))
            literal, i = literal + char, i + 1
            continue
        if literal:
            nodes.append(literal)
            literal = ""
        node, i = _special(text, i, in_fixed)
        nodes.append(node)
    if literal:
        nodes.append(literal)
    return tuple(nodes), i


def _special(text: str, i: int, in_fixed: bool) -> tuple[Node, int]:
    """A slot, alternation or annotation starting at `text[i]`."""
    char = text[i]
    if char == "{":
        end = text.find("}", i)
        name = text[i + 1:end] if end >= 0 else ""
        if end < 0 or not _NAME.fullmatch(name):
            raise TemplateError(f"bad slot at column {i + 1}: expected {{parameter_name}}")
        if in_fixed:
            raise TemplateError(f"slot {{{name}}} inside [...] text at column {i + 1}")
        return Slot(name), end + 1
    if char == "(":
        branches = []
        while True:
            branch, i = _sequence(text, i + 1, "|)", in_fixed)
            branches.append(branch)
            if i >= len(text):
                raise TemplateError("unclosed '(' alternation")
            if text[i] == ")":
                return Choice(tuple(branches)), i + 1
    if in_fixed:
        raise TemplateError(f"nested '[' at column {i + 1}")
    inner, end = _sequence(text, i + 1, "]", in_fixed=True)
    if end >= len(text) or not text.startswith("(", end + 1):
        raise TemplateError(f"'[...]' at column {i + 1} must be followed by (param=value)")
    close = text.find(")", end + 1)
    param, sep, raw = text[end + 2:close].partition("=")
    if close < 0 or not sep or not _NAME.fullmatch(param.strip()):
        raise TemplateError(f"bad annotation at column {end + 2}: expected (param=value)")
    return Fixed(param.strip(), raw.strip(), inner), close + 1


def fixed_value(node: Fixed, param: Param) -> Any:
    """An annotation's value: text for a string parameter (`units=imperial`, `mode=off`), else a
    JSON scalar (`limit=5`, `include_air_quality=true`); a value that is not JSON stays text;
    an array parameter given one item (`tags=hike`) gets a one-item list."""
    if param.type == "array" and not node.value.startswith("["):
        return [fixed_value(node, item_param(param))]
    if param.type == "string":
        return node.value.strip("\"'")
    try:
        return json.loads(node.value)
    except json.JSONDecodeError:
        return node.value


# ---------------------------------------------------------------------------------- checking

def check_template(nodes: tuple[Node, ...], tool: Tool, given: str = "") -> list[str]:
    """Problems of a parsed template against its tool's schema (empty list when fine).
    `given`: the parameter a follow-up takes from the previous result (never said)."""
    names = {p.name for p in tool.parameters}
    problems = []
    for node in _walk(nodes):
        name = node.name if isinstance(node, Slot) else node.param
        if name not in names:
            problems.append(f"unknown parameter {name!r} (parameters: {sorted(names)})")
        elif name == given:
            problems.append(f"parameter {name!r} comes from the previous result: a follow-up "
                            f"never says it")
        elif isinstance(node, Slot) and tool.param(name).type == "boolean":
            problems.append(f"boolean parameter {name!r} as a slot: write "
                            f"[text]({name}=true) instead")
        elif isinstance(node, Fixed):
            param = tool.param(name)
            problems += [f"annotation {p}" for p in
                         check_value(fixed_value(node, param), param, name)]
    missing = [n for n in tool.required_names if n not in _always(nodes) and n != given]
    if missing:
        problems.append(f"required parameter(s) {missing} missing from some expansion")
    glued = sorted({name for expansion in expand(nodes) for name in _glued(expansion)})
    if glued:
        problems.append(f"slot(s) {glued} touch a letter, digit or '_', or follow a '.' "
                        f"(e.g. {{a}}x): the value could not be found in the request")
    twice = sorted({name for expansion in expand(nodes) for name in _doubly_set(expansion)})
    if twice:
        problems.append(f"parameter(s) {twice} fixed twice in one expansion, or both a slot "
                        f"and fixed (a repeated slot is fine: it says the same value)")
    return problems


def expand(nodes: tuple[Node, ...]) -> list[tuple[Node, ...]]:
    """The expansions of one template: alternations resolved, annotation text flattened to one
    string; at most `MAX_EXPANSIONS`."""
    done: list[tuple[Node, ...]] = [()]
    for node in nodes:
        if isinstance(node, Choice):
            options = [e for branch in node.branches for e in expand(branch)]
        elif isinstance(node, Fixed):
            options = [(Fixed(node.param, node.value, ("".join(e),)),) for e in
                       expand(node.text)]
        else:
            options = [(node,)]
        done = [d + o for d in done for o in options][:MAX_EXPANSIONS]
    return done


def _walk(nodes: tuple[Node, ...]):
    """Every slot and annotation, at any depth."""
    for node in nodes:
        if isinstance(node, (Slot, Fixed)):
            yield node
        if isinstance(node, Choice):
            for branch in node.branches:
                yield from _walk(branch)


def _always(nodes: tuple[Node, ...]) -> set[str]:
    """Parameters present in every expansion."""
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, Slot):
            found.add(node.name)
        elif isinstance(node, Fixed):
            found.add(node.param)
        elif isinstance(node, Choice):
            found |= set.intersection(*(_always(b) for b in node.branches))
    return found


def _glued(expansion: tuple[Node, ...]) -> set[str]:
    """Slots with a letter or digit right before or after them in one expansion."""
    glued = set()
    for i, node in enumerate(expansion):
        if isinstance(node, Slot):
            before = expansion[i - 1] if i > 0 else ""
            after = expansion[i + 1] if i + 1 < len(expansion) else ""
            if (isinstance(before, str) and _glues(before[-1:], ".")) or \
                    (isinstance(after, str) and _glues(after[:1], "")):
                glued.add(node.name)
    return glued


def _glues(char: str, extra: str) -> bool:
    """As the semantic check sees it: `5` is not found in `25`, `5x`, `_5` or `.5`."""
    return bool(char) and (char.isalnum() or char == "_" or char in extra)


def _doubly_set(expansion: tuple[Node, ...]) -> set[str]:
    """Parameters fixed twice, or both fixed and a slot, in one expansion."""
    fixed = [n.param for n in expansion if isinstance(n, Fixed)]
    slots = {n.name for n in expansion if isinstance(n, Slot)}
    return {name for name in fixed if fixed.count(name) > 1 or name in slots}


# ---------------------------------------------------------------------------------- loading

def load_templates(path: Path, tools: list[Tool]) -> dict[str, ToolTemplates]:
    """Read and check one `requests.yaml` against the tools it may describe.

    Raises:
        TemplateError: Listing every problem, each naming the file, tool and template.
    """
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise TemplateError(f"{path}: expected a mapping of tool name -> {{requests, values}}")
    by_name = {t.name: t for t in tools}
    loaded, errors = {}, []
    for name, entry in doc.items():
        where = f"{path}: tool {name!r}"
        if name not in by_name:
            errors.append(f"{where}: unknown tool (tools here: {sorted(by_name)})")
            continue
        parsed, problems = _read_entry(entry, by_name[name], where)
        errors += problems
        if parsed is not None:
            loaded[name] = parsed
    if errors:
        raise TemplateError("\n".join(errors))
    return loaded


def _read_entry(entry: Any, tool: Tool, where: str) -> tuple[ToolTemplates | None, list[str]]:
    if not isinstance(entry, dict) or not set(entry) <= {"requests", "values", "follow_ups"} \
            or not isinstance(entry.get("requests"), list) or not entry["requests"]:
        return None, [f"{where}: expected keys 'requests' (a non-empty list) and optional "
                      f"'values' and 'follow_ups'"]
    templates, errors = _read_list(entry["requests"], tool, f"{where}: template")
    values = entry.get("values") or {}
    errors += _check_values(values, tool, where)
    follow_ups, problems = _read_follow_ups(entry.get("follow_ups"), tool, where)
    errors += problems
    if errors:
        return None, errors
    return ToolTemplates(tool.name, templates, tuple(entry["requests"]), values, follow_ups), []


def _read_list(texts: list, tool: Tool, where: str,
               given: str = "") -> tuple[tuple[tuple[Node, ...], ...], list[str]]:
    """Parse and check a list of templates; `where` names the list in each problem."""
    errors, templates = [], []
    for number, text in enumerate(texts, start=1):
        label = f"{where} {number} ({text!r})"
        if not isinstance(text, str) or not text.strip():
            errors.append(f"{label}: not a non-empty string")
            continue
        try:
            nodes = parse_template(text)
        except TemplateError as exc:
            errors.append(f"{label}: {exc}")
            continue
        errors += [f"{label}: {problem}" for problem in check_template(nodes, tool, given)]
        templates.append(nodes)
    return tuple(templates), errors


def _read_follow_ups(entry: Any, tool: Tool,
                     where: str) -> tuple[dict[str, tuple] | None, list[str]]:
    """`follow_ups`: parameter -> non-empty list of clauses; absent gives None."""
    if entry is None:
        return None, []
    lists, errors = _param_lists(entry, tool, f"{where}: follow_ups")
    parsed = {}
    for param, texts in lists.items():
        parsed[param], problems = _read_list(texts, tool, f"{where}: follow_ups: {param}",
                                             given=param)
        errors += problems
    return parsed, errors


def _param_lists(entry: Any, tool: Tool, where: str) -> tuple[dict[str, list], list[str]]:
    """A mapping of parameter -> non-empty list (`values`, `follow_ups`): its well-formed
    entries, and a problem for each other one (`where` names the mapping)."""
    if not isinstance(entry, dict):
        return {}, [f"{where}: expected a mapping of parameter -> list"]
    names = {p.name for p in tool.parameters}
    lists, errors = {}, []
    for name, entries in entry.items():
        if name not in names:
            errors.append(f"{where}: unknown parameter {name!r}")
        elif not isinstance(entries, list) or not entries:
            errors.append(f"{where}: {name}: expected a non-empty list")
        else:
            lists[name] = entries
    return lists, errors


def _check_values(values: Any, tool: Tool, where: str) -> list[str]:
    """Each entry fits the parameter (an array parameter also takes single items)."""
    lists, errors = _param_lists(values, tool, f"{where}: values")
    for name, entries in lists.items():
        param = tool.param(name)
        for value in entries:
            schema = item_param(param) if is_item(value, param) else param
            errors += [f"{where}: values: {p}" for p in check_value(value, schema, name)]
    return errors


def is_item(value: Any, param: Param) -> bool:
    return param.type == "array" and not isinstance(value, list)


def catalogue_templates(catalogue: Catalogue) -> dict[str, ToolTemplates]:
    """Templates of every tool whose schema folder holds a `requests.yaml`, by tool name.

    Raises:
        TemplateError: When any `requests.yaml` is malformed or does not fit its tools.
    """
    folders: dict[Path, list[Tool]] = {}
    for tool in catalogue.tools:
        if tool.source:
            folders.setdefault(Path(tool.source.split("#")[0]).parent, []).append(tool)
    found: dict[str, ToolTemplates] = {}
    for folder, tools in sorted(folders.items()):
        if (folder / REQUESTS_FILE).is_file():
            found |= load_templates(folder / REQUESTS_FILE, tools)
    return found
