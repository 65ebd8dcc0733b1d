"""Python functions as tools: signature, type hints and docstring, as agent frameworks read them.

`MODULE[:FUNCTION]` names what to read. `MODULE` alone gives the module's public functions: the
names in its `__all__` when it has one, else the public names it defines itself; either way only
callables that are not classes (functions, builtins, numpy ufuncs, callable objects). A name
starting with `_` is never read, a class never (its constructor is not a tool), nor constants or
submodules. Importing a module runs its code: read only modules you trust. The current folder is
searched first, as `python -c "import MODULE"` would.

- Name: the name the module exports (`numpy.round` -> `round`); `MODULE.NAME` when that name is
  also a tool of another source (`sources.read_sources` passes the names already taken).
- Description: the docstring's summary and long description (docstring styles Google, NumPy and
  reST, read by `docstring_parser`), cleaned of reST/markdown markup and directives and cut at a
  sentence boundary (`MAX_DESCRIPTION` characters, never less than the first sentence). A first
  line that repeats the signature (numpy ufuncs: `add(x1, x2, /, ...)`) is dropped.
- Parameters: in signature order. The type comes from the annotation (through pydantic's JSON
  Schema: int/float/str/bool, `X | None` and `Optional[X]` (null allowed), `Literal`/`Enum`
  (enum), list/tuple/Sequence (array with items), dict/Mapping (object), dataclasses and models
  (object with properties)), else from the type the docstring gives (`DOC_TYPES`, `X or Y`,
  `list of X`, `{'a', 'b'}`; numpy's `array_like` is a number or an array). A parameter without a
  default is required, one with a default is optional and keeps it when JSON can represent it.
  `*args` and `**kwargs` are left out with a note; a function that takes nothing else is skipped.
- Returns: the return annotation, else the docstring's return type; None when neither gives a
  type our model can represent.
- Category: the top-level package (`scipy.stats` -> `scipy`); source `python:MODULE:NAME`.

Strict mode fails a function for a parameter without a representable type, without a
description, or for a function without a docstring, naming module, function and parameter.
Lenient mode keeps what can be represented: an optional parameter without a usable type is left
out, a missing description is kept empty, each with a note; a required parameter without a usable
type skips the function. A builtin without a signature (no `__text_signature__`, e.g. `max`) is
skipped with that reason; numpy 2's ufuncs have one (`add(x1, x2, /, out=None, ...)`) and are read.
Left out: methods of classes, and running the functions.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import re
import sys
from typing import Any

import docstring_parser
from pydantic import PydanticUserError, TypeAdapter

from toolmodal.ingest.common import collect, tool_name
from toolmodal.ingest.doctext import clean
from toolmodal.ingest.errors import FieldError, Problem, reason, tool_label
from toolmodal.ingest.jsonschema import Converter
from toolmodal.ingest.loader import Ingested
from toolmodal.schema import Param, Tool

PREFIX = "python"
MAX_DESCRIPTION = 400  # characters of a tool description (at least its first sentence)
MAX_PARAM_DESCRIPTION = 250  # characters of a parameter description
_NUMBER_OR_ARRAY = {"anyOf": [{"type": "number"}, {"type": "array"}]}
# Type words of docstrings (lower case) as JSON Schema; anything else cannot be represented.
DOC_TYPES: dict[str, dict] = {
    **dict.fromkeys(("int", "integer"), {"type": "integer"}),
    **dict.fromkeys(("float", "number", "scalar", "real"), {"type": "number"}),
    **dict.fromkeys(("str", "string"), {"type": "string"}),
    **dict.fromkeys(("bool", "boolean"), {"type": "boolean"}),
    **dict.fromkeys(("list", "tuple", "sequence", "array", "ndarray"), {"type": "array"}),
    **dict.fromkeys(("dict", "mapping"), {"type": "object"}),
    "array_like": _NUMBER_OR_ARRAY, "array-like": _NUMBER_OR_ARRAY,
    "none": {"type": "null"}, "any": {},
}
_VAR = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
_OPTIONAL = re.compile(r"[,\s]\s*(?:optional\s*|default\b.*)$", re.IGNORECASE)
_SPLIT = re.compile(r"\s*,\s*(?:or\s+)?|\s+or\s+|\s*\|\s*")
_CONTAINER = re.compile(r"(\w[\w-]*)\s*(?:\[(.+)\]|\s+of\s+(.+))", re.DOTALL)
_SIGNATURE_LINE = re.compile(r"[\w.]+\(.*\)", re.DOTALL)


def label(spec: str) -> str:
    """How messages and summaries name a `MODULE[:FUNCTION]` spec: `python:SPEC`."""
    return f"{PREFIX}:{spec}"


def read_modules(specs: list[str], lenient: bool = False,
                 taken: set[str] | frozenset[str] = frozenset()) -> Ingested:
    """Tools, error lines and notes of every `MODULE[:FUNCTION]` spec.

    Args:
        specs: e.g. `["numpy:linspace", "textwrap"]`.
        lenient: Keep what can be represented and note the rest (see the module docstring).
        taken: Tool names of other sources; a function of that name is named `MODULE.NAME`,
            as is one whose name another module's function has too.
    """
    tools: list[Tool] = []
    errors: list[str] = []
    notes: list[str] = []
    for spec in specs:
        spec_tools, spec_errors, spec_notes = read_module(spec, lenient)
        tools += spec_tools
        errors += spec_errors
        notes += spec_notes
    modules: dict[str, set[str]] = {}
    for tool in tools:
        modules.setdefault(tool.name, set()).add(_module_of(tool))
    clash = {name for name, owners in modules.items() if len(owners) > 1 or name in taken}
    return Ingested([t.model_copy(update={"name": f"{_module_of(t)}.{t.name}"})
                     if t.name in clash else t for t in tools], errors, notes)


def read_module(spec: str, lenient: bool = False) -> Ingested:
    """Tools, error lines and notes of one `MODULE[:FUNCTION]` spec (category and source set)."""
    module_name, _, function = spec.partition(":")
    try:
        module = _import(module_name)
    except Exception as exc:  # noqa: BLE001 - importing runs the module's own code
        message = f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
        return Ingested([], [Problem(f"{label(spec)}: {message}", "cannot import module")], [])
    if function:
        if not _is_function(getattr(module, function, None)):
            message = f"module {module_name!r} has no function {function!r}"
            return Ingested([], [Problem(f"{label(spec)}: {message}", "no such function")], [])
        names = [function]
    else:
        names = _public(module)
    notes: list[str] = []
    tools, errors = [], []
    for name in names:
        where = label(f"{module_name}:{name}")
        found, problems = collect(where, [(tool_label(name, ""), lambda n=name, w=where: _tool(
            n, getattr(module, n), module_name, w, lenient, notes))])
        tools += found
        errors += problems
    return Ingested(tools, errors, notes)


def _import(name: str) -> Any:
    """Import `name` with the current folder searched first, as `python -c` would."""
    here = os.getcwd()
    added = here not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(name)
    finally:
        if added:
            sys.path.remove(here)


def _public(module: Any) -> list[str]:
    """Names of the module's public functions: `__all__`, else those it defines."""
    exported = vars(module).get("__all__")
    if exported is not None:
        return [n for n in exported if not n.startswith("_")
                and _is_function(getattr(module, n, None))]
    return [n for n, obj in vars(module).items() if not n.startswith("_") and _is_function(obj)
            and inspect.getmodule(obj) is module]


def _is_function(obj: Any) -> bool:
    return callable(obj) and not inspect.isclass(obj)


def _module_of(tool: Tool) -> str:
    return tool.source.split(":")[1]


def _tool(name: str, func: Any, module: str, where: str, lenient: bool,
          notes: list[str]) -> Tool:
    """One function as a Tool; FieldError names the parameter at fault."""
    try:
        inspect.signature(func)
    except (ValueError, TypeError):  # e.g. a builtin without __text_signature__
        raise FieldError("signature", "no signature to read (a builtin without "
                                      "__text_signature__, or not a function inspect reads)"
                         ) from None
    try:
        signature = inspect.signature(func, eval_str=True)
    except Exception as exc:  # noqa: BLE001 - evaluating string annotations runs module code
        raise FieldError("annotations", f"cannot evaluate type hints: "
                                        f"{type(exc).__name__}: {exc}") from None
    if all(p.kind in _VAR for p in signature.parameters.values()) and signature.parameters:
        raise FieldError("parameters", "takes only *args/**kwargs: nothing to describe")
    try:
        doc = docstring_parser.parse(inspect.getdoc(func) or "")
    except docstring_parser.ParseError as exc:
        raise FieldError("docstring", f"cannot parse the docstring: {exc}") from None
    documented = {n.strip().lstrip("*"): p for p in doc.params for n in p.arg_name.split(",")}
    own: list[str] = []
    params = [p for p in (_parameter(sp, documented.get(sp.name), lenient, own, where, name)
                          for sp in signature.parameters.values()) if p is not None]
    description = _description(doc)
    if not description:
        _problem(FieldError("description", "no description: the function has no docstring"),
                 lenient, own, where, name)
    notes += own
    return Tool(name=tool_name(name), description=description, parameters=tuple(params),
                returns=_returns(signature, doc), category=module.split(".")[0], source=where)


def _parameter(param: inspect.Parameter, doc: Any, lenient: bool, notes: list[str],
               where: str, name: str) -> Param | None:
    """The Param of one signature parameter, or None when it is left out (noted)."""
    field = f"parameters.{param.name}"
    if param.kind in _VAR:
        kind = "*args" if param.kind is inspect.Parameter.VAR_POSITIONAL else "**kwargs"
        notes.append(_note(where, name, field, f"{kind} parameter {param.name!r} is not "
                                               f"represented"))
        return None
    try:
        out = _param(param, doc, field)
    except FieldError as exc:
        if not lenient or param.default is inspect.Parameter.empty:
            raise
        notes.append(_note(where, name, exc.field, f"{exc.message} (optional: left out)"))
        return None
    if not out.description:
        _problem(FieldError(field, "no description in the docstring"), lenient, notes, where,
                 name)
    return out


def _param(param: inspect.Parameter, doc: Any, field: str) -> Param:
    hint = param.annotation
    if hint is not inspect.Parameter.empty:
        schema = _hint_schema(hint, field)
    elif doc is not None and doc.type_name:
        schema = doc_type_schema(doc.type_name)
        if schema is None:
            raise FieldError(field, f"docstring type {doc.type_name!r} cannot be represented")
    else:
        raise FieldError(field, "no type: neither an annotation nor a type in the docstring")
    description = clean(doc.description or "", MAX_PARAM_DESCRIPTION) if doc is not None else ""
    if description:
        schema = schema | {"description": description}
    default = _json_default(param.default, hint)
    if default is not _ABSENT:
        schema = schema | {"default": default}
    required = param.default is inspect.Parameter.empty
    return Converter(root=schema).param(schema, field, param.name, required)


def _problem(exc: FieldError, lenient: bool, notes: list[str], where: str, name: str) -> None:
    """Strict: raise `exc`; lenient: note it (what it names is kept as it is)."""
    if not lenient:
        raise exc
    notes.append(_note(where, name, exc.field, f"{exc.message} (kept without one)"))


def _note(where: str, name: str, field: str, message: str) -> Problem:
    return Problem(f"{where}: {tool_label(name, '')}: {field}: {message}", reason(message))


def _hint_schema(hint: Any, field: str) -> dict:
    """The JSON Schema of a type annotation, numbers and integers merged in a union."""
    try:
        schema = TypeAdapter(hint).json_schema()
    except PydanticUserError as exc:
        raise FieldError(field, f"type {_type_name(hint)!r} cannot be represented "
                                f"({type(exc).__name__})") from None
    return _merge_numbers(schema)


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else repr(hint)


def _merge_numbers(schema: dict) -> dict:
    """`int | float` is a number, not a union of two types."""
    members = schema.get("anyOf")
    if not isinstance(members, list) or {"type": "number"} not in members:
        return schema
    rest = [m for m in members if m != {"type": "integer"}]
    return {k: v for k, v in schema.items() if k != "anyOf"} | (
        {"anyOf": rest} if len(rest) > 1 else rest[0])


_ABSENT = object()


def _json_default(value: Any, hint: Any) -> Any:
    """A default as JSON (enum members by value, tuples as lists), or _ABSENT."""
    if value is inspect.Parameter.empty:
        return _ABSENT
    try:
        if hint is not inspect.Parameter.empty:
            value = TypeAdapter(hint).dump_python(value, mode="json", warnings=False)
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, PydanticUserError):  # e.g. numpy's <no value>, inf
        return _ABSENT


def doc_type_schema(text: str) -> dict | None:
    """The JSON Schema of a docstring type (`int or None`, `list of str`, `{'a', 'b'}`), or None.

    None means it cannot be represented: a word not in `DOC_TYPES` (`callable`, `dtype`...)
    anywhere in it.
    """
    text = _OPTIONAL.sub("", text.strip()).strip()
    members = [_member(part) for part in _split(text)]
    if not members or any(m is None for m in members):
        return None
    return members[0] if len(members) == 1 else _merge_numbers({"anyOf": members})


def _member(word: str) -> dict | None:
    word = word.strip().strip("`").lstrip("~")
    if word.lower() in DOC_TYPES:
        return DOC_TYPES[word.lower()]
    if word.startswith("{") and word.endswith("}"):
        return _enum_schema(word[1:-1])
    container = _CONTAINER.fullmatch(word)
    outer = DOC_TYPES.get(container[1].lower()) if container else None
    if outer == {"type": "object"}:  # "dict of str to int": keys and values are not modelled
        return outer
    if outer not in ({"type": "array"}, _NUMBER_OR_ARRAY):
        return None
    inner = container[2] or container[3]
    items = doc_type_schema(inner)
    if items is None and inner.endswith("s"):  # "list of ints"
        items = doc_type_schema(inner[:-1])
    return None if items is None else {"type": "array", "items": items}


def _split(text: str) -> list[str]:
    """Alternatives of a docstring type, split at `,`, `or` and `|` outside brackets."""
    parts, depth, start = [], 0, 0
    for match in re.finditer(r"[\[\](){}]|" + _SPLIT.pattern, text):
        token = match.group()
        if token in "[({":
            depth += 1
        elif token in "])}":
            depth -= 1
        elif depth == 0:
            parts.append(text[start:match.start()])
            start = match.end()
    return [p for p in (*parts, text[start:]) if p.strip()]


def _enum_schema(inner: str) -> dict | None:
    """numpydoc's `{'a', 'b', None}`: an enum of one JSON type, None making it nullable."""
    try:
        values = ast.literal_eval(f"[{inner}]")
    except (ValueError, SyntaxError):
        return None
    present = [v for v in values if v is not None]
    kinds = {type(v) for v in present}
    types = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if len(kinds) != 1 or next(iter(kinds)) not in types:
        return None
    schema = {"type": types[next(iter(kinds))], "enum": present}
    return {"anyOf": [schema, {"type": "null"}]} if None in values else schema


def _returns(signature: inspect.Signature, doc: Any) -> Param | None:
    hint = signature.return_annotation
    documented = doc.returns
    try:
        if hint not in (inspect.Signature.empty, None, type(None)):
            schema: dict | None = _hint_schema(hint, "returns")
        else:
            schema = doc_type_schema(documented.type_name) \
                if documented is not None and documented.type_name else None
        if schema is None:
            return None
        description = clean(documented.description or "", MAX_PARAM_DESCRIPTION) \
            if documented is not None else ""
        schema = schema | {"description": description} if description else schema
        return Converter(root=schema).param(schema, "returns")
    except FieldError:  # a return type our model cannot hold: the tool has no return type
        return None


def _description(doc: Any) -> str:
    parts = [doc.short_description or "", doc.long_description or ""]
    if _SIGNATURE_LINE.fullmatch(parts[0].strip()):
        parts = parts[1:]
    return clean("\n\n".join(parts), MAX_DESCRIPTION)
