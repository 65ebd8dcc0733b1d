"""Python functions as tools (`toolmodal.ingest.python_functions`): the three docstring styles,
each type mapping, strict vs lenient reports, the standard library, numpy and scipy, and
`schemas check --python ... --json`.

The small functions below are the fixtures; this module's `__all__` lists them, so
`read_module(__name__)` reads exactly them.
"""

from __future__ import annotations

import enum
import json
import sys
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Optional

import pytest

from toolmodal.cli import main
from toolmodal.ingest import SchemaError, load_catalogue
from toolmodal.ingest.doctext import clean, cut
from toolmodal.ingest.python_functions import doc_type_schema, read_module, read_modules
from toolmodal.schema import Tool

__all__ = ["google_style", "numpy_style", "rest_style", "mapped", "variadic", "only_variadic",
           "untyped_optional", "untyped_required", "undescribed", "Unit", "linspace"]

HERE = __name__


class Unit(enum.Enum):
    """A class in `__all__`: not a function, never read."""

    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


@dataclass
class Point:
    """A point."""

    x: float
    y: float


def google_style(city: str, days: int = 3, unit: Unit = Unit.CELSIUS) -> dict[str, float]:
    """Get the weather forecast for a city.

    Uses the ``forecast`` service. See :func:`~weather.api.get` for details.

    .. note::
        This block is a directive and is dropped.

    Args:
        city: Name of the city, e.g. "Paris".
        days: Number of days to forecast.
        unit: Temperature unit.

    Returns:
        Temperature per day.
    """
    return {}


def numpy_style(values, mode="fast", labels=None, scale=1.0, axis=None):
    """Summarise *values* with a method.

    Parameters
    ----------
    values : array_like
        The input values.
    mode : {'fast', 'exact'}, optional
        How to compute it.
    labels : list of str, optional
        Names of the values.
    scale : float or int
        Factor applied first.
    axis : int or None, optional
        Axis to reduce.

    Returns
    -------
    summary : float
        The summary.
    """


def rest_style(path, retries=2):
    """Download a file.

    :param path: Where to save it.
    :type path: str
    :param int retries: How often to retry.
    :returns: The number of bytes written.
    :rtype: int
    """


def mapped(a: int, b: float, c: str, d: bool, e: Optional[int],  # noqa: UP045 - both spellings
           f: int | None = None,
           g: Literal["x", "y"] = "x", h: list[int] | None = None, i: tuple[str, ...] = (),
           j: Sequence[float] = (1.5,), k: dict[str, int] | None = None,
           m: Mapping[str, Any] | None = None, n: int | float = 1, p: Point | None = None,
           q: Any = None) -> None:
    """Take one parameter of each type.

    Args:
        a: An int.
        b: A float.
        c: A str.
        d: A bool.
        e: Optional, but without a default.
        f: Or None.
        g: A literal.
        h: A list.
        i: A tuple.
        j: A sequence.
        k: A dict.
        m: A mapping.
        n: A number.
        p: A dataclass.
        q: Anything.
    """


def variadic(query: str, *args: Any, **kwargs: Any) -> None:
    """Search.

    Args:
        query: Words to look for.
    """


def only_variadic(*args: Any, **kwargs: Any) -> None:
    """Take anything."""


def untyped_optional(name: str, callback=None) -> None:
    """Greet someone.

    Args:
        name: Who.
        callback: Called afterwards.
    """


def untyped_required(name) -> None:
    """Greet someone.

    Args:
        name: Who.
    """


def undescribed(name: str, count: int = 1) -> None:
    """Greet someone.

    Args:
        name: Who.
    """


def no_docstring(x: int) -> int:  # not in __all__: read only by name
    return x


def linspace(start: float, stop: float) -> list[float]:
    """Shares its name with numpy's.

    Args:
        start: First value.
        stop: Last value.
    """
    return [start, stop]


def _params(tool: Tool) -> dict[str, dict]:
    return {p.name: p.model_dump(exclude_defaults=True, exclude={"name"}) for p in tool.parameters}


def _one(spec: str, lenient: bool = False) -> tuple[Tool, list[str]]:
    tools, errors, notes = read_module(spec, lenient)
    assert not errors, errors
    return tools[0], notes


def test_google_style_with_annotations() -> None:
    tool, notes = _one(f"{HERE}:google_style")
    assert tool.name == "google_style" and tool.category == HERE.split(".")[0]
    assert tool.source == f"python:{HERE}:google_style" and notes == []
    # markup and the directive removed, summary and long description joined
    assert tool.description == ("Get the weather forecast for a city. Uses the forecast service. "
                                "See weather.api.get for details.")
    assert _params(tool) == {
        "city": {"type": "string", "description": 'Name of the city, e.g. "Paris".',
                 "required": True},
        "days": {"type": "integer", "description": "Number of days to forecast.", "default": 3,
                 "has_default": True},
        # an Enum annotation is an enum; its default is written as its value
        "unit": {"type": "string", "description": "Temperature unit.", "default": "celsius",
                 "has_default": True, "enum": ("celsius", "fahrenheit")}}
    assert tool.returns.type == "object" and tool.returns.description == "Temperature per day."


def test_numpy_style_types_from_the_docstring() -> None:
    tool, _ = _one(f"{HERE}:numpy_style")
    params = _params(tool)
    assert tool.description == "Summarise values with a method."
    # numpy's array_like: a number or an array
    assert params["values"] == {"type": "any", "required": True,
                                "description": "The input values. One of: number, array."}
    assert params["mode"]["enum"] == ("fast", "exact") and params["mode"]["default"] == "fast"
    assert params["labels"]["type"] == "array" and tool.param("labels").items.type == "string"
    assert params["scale"]["type"] == "number" and params["scale"]["default"] == 1.0
    assert params["axis"]["type"] == "integer" and not tool.param("axis").required
    assert tool.returns.type == "number"


def test_rest_style() -> None:
    tool, _ = _one(f"{HERE}:rest_style")
    assert _params(tool) == {
        "path": {"type": "string", "description": "Where to save it.", "required": True},
        "retries": {"type": "integer", "description": "How often to retry.", "default": 2,
                    "has_default": True}}
    assert tool.returns.type == "integer"
    assert tool.returns.description == "The number of bytes written."


@pytest.mark.parametrize(("name", "type_", "required", "extra"), [
    ("a", "integer", True, {}),
    ("b", "number", True, {}),
    ("c", "string", True, {}),
    ("d", "boolean", True, {}),
    ("e", "integer", True, {}),  # Optional[X] allows null; without a default it is still required
    ("f", "integer", False, {"default": None}),
    ("g", "string", False, {"enum": ("x", "y"), "default": "x"}),
    ("h", "array", False, {"items": "integer"}),
    ("i", "array", False, {"items": "string", "default": []}),  # a tuple default is a list
    ("j", "array", False, {"items": "number", "default": [1.5]}),
    ("k", "object", False, {}),
    ("m", "object", False, {}),
    ("n", "number", False, {"default": 1}),  # int | float is a number, not a union
    ("p", "object", False, {"properties": ["x", "y"]}),
    ("q", "any", False, {}),
])
def test_type_mapping(name: str, type_: str, required: bool, extra: dict) -> None:
    param = _one(f"{HERE}:mapped")[0].param(name)
    assert (param.type, param.required) == (type_, required)
    for key, value in extra.items():
        got = {"items": lambda: param.items.type,
               "properties": lambda: [p.name for p in param.properties]}.get(
            key, lambda k=key: getattr(param, k))()
        assert got == value, key


def test_variadic_parameters_are_noted_and_a_function_of_only_them_skipped() -> None:
    tool, notes = _one(f"{HERE}:variadic")
    assert [p.name for p in tool.parameters] == ["query"]
    assert [n.reason for n in notes] == ["*args parameter … is not represented",
                                         "**kwargs parameter … is not represented"]
    _, errors, _ = read_module(f"{HERE}:only_variadic", lenient=True)
    assert errors == [f"python:{HERE}:only_variadic: tool 'only_variadic': parameters: takes "
                      f"only *args/**kwargs: nothing to describe"]


def test_strict_names_module_function_and_parameter() -> None:
    for function, parameter, message in [
            ("untyped_optional", "callback", "no type"),
            ("untyped_required", "name", "no type"),
            ("undescribed", "count", "no description"),
            ("no_docstring", "x", "no description")]:
        with pytest.raises(SchemaError) as info:
            load_catalogue([], modules=[f"{HERE}:{function}"])
        assert str(info.value).startswith(
            f"python:{HERE}:{function}: tool '{function}': parameters.{parameter}: {message}")


def test_lenient_keeps_what_can_be_represented_and_reports_the_rest() -> None:
    tools, errors, notes = read_module(HERE, lenient=True)
    # __all__ order; the class Unit is not read
    assert [t.name for t in tools] == ["google_style", "numpy_style", "rest_style", "mapped",
                                       "variadic", "untyped_optional", "undescribed", "linspace"]
    by_name = {t.name: t for t in tools}
    # an optional parameter without a type is left out, a missing description is kept empty
    assert [p.name for p in by_name["untyped_optional"].parameters] == ["name"]
    assert by_name["undescribed"].param("count").description == ""
    assert [e.reason for e in errors] == [
        "takes only *args/**kwargs: nothing to describe",
        "no type: neither an annotation nor a type in the docstring"]  # a required one: skipped
    assert "untyped_required" in errors[1] and "parameters.name" in errors[1]
    reasons = {n.reason for n in notes}
    assert "no type: neither an annotation nor a type in the docstring (optional: left out)" \
        in reasons
    assert "no description in the docstring (kept without one)" in reasons
    tool, notes = _one(f"{HERE}:no_docstring", lenient=True)
    assert tool.description == "" and notes[-1] == (
        f"python:{HERE}:no_docstring: tool 'no_docstring': description: no description: the "
        f"function has no docstring (kept without one)")


def test_module_without_all_reads_the_public_functions_it_defines(
        monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("fake_tools")
    exec("from textwrap import dedent\n"  # imported, not defined here: not read
         "def shout(text: str) -> str:\n"
         "    '''Say it loud.\n\n    Args:\n        text: What to say.\n    '''\n"
         "def _hidden(x: int) -> None:\n"
         "    '''Private.'''\n", module.__dict__)
    monkeypatch.setitem(sys.modules, "fake_tools", module)
    tools, errors, _ = read_module("fake_tools")
    assert [t.name for t in tools] == ["shout"] and errors == []
    assert tools[0].category == "fake_tools"


def test_missing_module_or_function_is_named() -> None:
    _, errors, _ = read_module("no_such_module_xyz")
    assert errors == ["python:no_such_module_xyz: cannot import module 'no_such_module_xyz': "
                      "ModuleNotFoundError: No module named 'no_such_module_xyz'"]
    _, errors, _ = read_module("json:no_such_function")
    assert errors == ["python:json:no_such_function: module 'json' has no function "
                      "'no_such_function'"]
    _, errors, _ = read_module("json:JSONDecoder")  # a class is not a function
    assert errors[0].reason == "no such function"


def test_standard_library() -> None:
    # json.dumps: no annotations and a free-form docstring; strict names the first parameter
    with pytest.raises(SchemaError, match=r"^python:json:dumps: tool 'dumps': parameters\.obj: "
                                          r"no type"):
        load_catalogue([], modules=["json:dumps"])
    # textwrap: __all__ holds the class TextWrapper and five functions; all lack types
    tools, errors, _ = read_module("textwrap", lenient=True)
    assert tools == [] and [e.split(":")[2] for e in errors] == [
        "wrap", "fill", "dedent", "indent", "shorten"]
    # a builtin without a text signature
    _, errors, _ = read_module("builtins:max", lenient=True)
    assert errors[0].startswith("python:builtins:max: tool 'max': signature: no signature")


def test_numpy_linspace() -> None:
    with pytest.raises(SchemaError, match=r"numpy:linspace: tool 'linspace': parameters\.dtype: "
                                          r"docstring type 'dtype' cannot be represented"):
        load_catalogue([], modules=["numpy:linspace"])
    tool, notes = _one("numpy:linspace", lenient=True)
    assert tool.category == "numpy" and tool.description.startswith(
        "Return evenly spaced numbers over a specified interval.")
    params = {p.name: p for p in tool.parameters}
    assert [n for n in params][:4] == ["start", "stop", "num", "endpoint"]
    assert (params["num"].type, params["num"].default, params["num"].required) == (
        "integer", 50, False)
    assert params["endpoint"].type == "boolean" and params["start"].required
    assert "dtype" not in params and any("parameters.dtype" in n for n in notes)


def test_numpy_ufunc_has_a_signature_in_numpy_2() -> None:
    tool, _ = _one("numpy:add", lenient=True)
    # "x1, x2 : array_like" documents both; the signature line of the docstring is dropped
    assert [p.name for p in tool.parameters][:2] == ["x1", "x2"]
    assert tool.description == "Add arguments element-wise."


def test_scipy() -> None:
    tool, _ = _one("scipy.stats:ttest_ind", lenient=True)
    assert tool.category == "scipy"
    assert tool.param("alternative").enum == ("two-sided", "less", "greater")
    assert tool.param("axis").type == "integer" and tool.param("equal_var").type == "boolean"
    # minimize_scalar needs a callable: nothing a tool call can pass
    _, errors, _ = read_module("scipy.optimize:minimize_scalar", lenient=True)
    assert errors == ["python:scipy.optimize:minimize_scalar: tool 'minimize_scalar': "
                      "parameters.fun: docstring type 'callable' cannot be represented"]


def test_names_are_qualified_only_when_needed() -> None:
    tools, _, _ = read_modules(["numpy:linspace", f"{HERE}:linspace", f"{HERE}:rest_style"],
                               lenient=True, taken={"rest_style"})
    assert [t.name for t in tools] == ["numpy.linspace", f"{HERE}.linspace",
                                       f"{HERE}.rest_style"]
    tools, _, _ = read_modules([f"{HERE}:linspace"])
    assert [t.name for t in tools] == ["linspace"]


@pytest.mark.parametrize(("text", "expected"), [
    ("int", {"type": "integer"}),
    ("int, optional", {"type": "integer"}),
    ("int or None", {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
    ("int or float", {"type": "number"}),  # one numeric type
    ("list of str", {"type": "array", "items": {"type": "string"}}),
    ("sequence of ints", {"type": "array", "items": {"type": "integer"}}),  # plural item word
    ("list[int]", {"type": "array", "items": {"type": "integer"}}),
    ("{'a', 'b'}", {"type": "string", "enum": ["a", "b"]}),
    ("{1, 2, None}", {"anyOf": [{"type": "integer", "enum": [1, 2]}, {"type": "null"}]}),
    ("dict", {"type": "object"}),
    ("str or callable", None),  # a callable cannot be passed in a tool call
    ("ndarray, None, or tuple of ndarray and None", None),
    ("dtype", None),
    ("{'a', 1}", None),  # an enum of mixed types
])
def test_doc_type_schema(text: str, expected: dict | None) -> None:
    assert doc_type_schema(text) == expected


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("Use ``x`` and `y`.", 100, "Use x and y."),
    ("See :ref:`Brent <optimize-brent>` and :func:`~np.sum`.", 100, "See Brent and np.sum."),
    ("First.\n\n.. versionadded:: 1.2\n    Detail.\n\nLast.", 100, "First. Last."),
    ("A **bold** *word* <b>tag</b> [1]_.", 100, "A bold word tag."),
    ("Returns x1 * 2**x2, element-wise.", 100, "Returns x1 * 2**x2, element-wise."),  # math
    # a literal block ends the text, with the sentence that introduces it
    ("Step function. It is defined as::\n\n    0 if x < 0\n\nMore.", 100, "Step function."),
    ("Equivalent to::\n\n    np.sum(a)", 100, "Equivalent to:"),
    ("One two. Three four. Five six.", 20, "One two. Three four."),  # whole sentences
    ("A very long first sentence. Next.", 5, "A very long first sentence."),  # at least one
])
def test_clean_and_cut(text: str, limit: int, expected: str) -> None:
    assert clean(text, limit) == expected
    assert cut(expected, len(expected)) == expected


def test_check_json_summary(capsys: pytest.CaptureFixture) -> None:
    code = main(["schemas", "check", "--lenient", "--json", "--python", "numpy:linspace",
                 "--python", "json:dumps", "--python", "textwrap"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["totals"] == {"tools": 1, "skipped": 6}
    assert out["files"]["python:numpy:linspace"] == {
        "tools": 1, "skipped": {},
        "notes": {"docstring type … cannot be represented (optional: left out)": 1}}
    no_type = "no type: neither an annotation nor a type in the docstring"
    assert out["files"]["python:json:dumps"] == {"tools": 0, "skipped": {no_type: 1}}
    assert out["files"]["python:textwrap"] == {"tools": 0, "skipped": {no_type: 5}}


def test_check_strict_fails_naming_the_parameter(capsys: pytest.CaptureFixture) -> None:
    assert main(["schemas", "check", "--python", "numpy:linspace"]) == 1
    assert "python:numpy:linspace: tool 'linspace': parameters.dtype" in capsys.readouterr().err
    assert main(["schemas", "check", "--python", "no_such_module_xyz"]) == 1
    assert "cannot import module 'no_such_module_xyz'" in capsys.readouterr().err


def test_data_generate_passes_python_and_the_mcp_timeout(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path) -> None:
    seen = {}

    def fake_load(paths, lenient, servers, modules, timeout):
        seen.update(modules=modules, timeout=timeout, servers=servers)
        raise SchemaError(["stop here"])

    monkeypatch.setattr("toolmodal.ingest.load_catalogue", fake_load)
    with pytest.raises(SchemaError):
        main(["data", "generate", "--out", str(tmp_path / "out"), "--mcp", "server-x",
              "--mcp-timeout", "5", "--python", "numpy:linspace"])
    assert seen == {"modules": ["numpy:linspace"], "timeout": 5.0, "servers": ["server-x"]}
