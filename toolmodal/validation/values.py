"""Plausibility checks on the argument values of expected calls, one problem list per check.

Each leaf value is checked by the kind its parameter declares (`patterns.checked_kind`: format
words, the name, the pattern; never the weaker description words, so a masked parameter is not
checked for a kind its value was not drawn for): dates and date-times parse in the schema's
format and lie within `DATE_WINDOW_YEARS` of the reference date (birth dates: after 1900),
clock times parse, e-mails, URLs and E.164 phone numbers are well formed, years are sensible;
every value satisfies its pattern, enum and range (`calls.check_value`); paired parameters are
ordered (`values.ordered_pairs`: start before end, min below max...). A problem reads
`row-id tool.argument=value: reason`.

Deliberately left out: checks that need the outside world (whether a city or a ticker exists).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

from toolmodal.calls import ToolCall, check_value
from toolmodal.datagen.patterns import DATE_FORMATS, REFERENCE_DATE, checked_kind
from toolmodal.datagen.values import (
    date_format,
    item_param,
    ordered_pairs,
    pair_in_order,
    words_of,
)
from toolmodal.schema import Param, Tool

DATE_WINDOW_YEARS = 3
VALUE_CHECKS = ("date", "email", "url", "phone", "schema", "pair")
EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+"
                   r"[A-Za-z]{2,}")
PHONE = re.compile(r"\+[1-9]\d{6,14}")
DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}(?::\d+)?")


def value_problems(row_id: str, calls: list[ToolCall], tools: list[Tool]) -> dict[str, list[str]]:
    """Problems in the arguments of `calls`, by check name (`VALUE_CHECKS`)."""
    problems: dict[str, list[str]] = {name: [] for name in VALUE_CHECKS}
    by_name = {t.name: t for t in tools}
    for call in calls:
        tool = by_name.get(call.name)
        if tool is None:
            continue  # an unknown tool is the target check's failure
        params = {p.name: p for p in tool.parameters if p.name in call.arguments}
        _check_object(f"{row_id} {call.name}", tuple(params.values()), call.arguments, problems)
    return problems


def _check_object(where: str, params: tuple[Param, ...], value: dict,
                  problems: dict[str, list[str]]) -> None:
    for param in params:
        if param.name not in value:
            continue
        path = f"{where}.{param.name}"
        problems["schema"] += [f"{path}={value[param.name]!r}: {p}" for p in
                               check_value(value[param.name], param, param.name)]
        _check_leaves(path, param, value[param.name], problems)
    for low, high in ordered_pairs(params):
        if low.name in value and high.name in value:
            _check_pair(where, low, high, value[low.name], value[high.name], problems)


def _check_leaves(path: str, param: Param, value: Any, problems: dict[str, list[str]]) -> None:
    if isinstance(value, dict) and param.properties:
        props = tuple(p for p in param.properties if p.name in value)
        _check_object(path, props, value, problems)
    elif isinstance(value, list) and param.type == "array":
        item = item_param(param)
        for i, element in enumerate(value):
            _check_leaves(f"{path}[{i}]", item, element, problems)
    elif isinstance(value, str):
        check, reason = _string_problem(value, param)
        if reason:
            problems[check].append(f"{path}={value!r}: {reason}")
    elif isinstance(value, int) and not isinstance(value, bool) and \
            "year" in words_of(param.name).split() and \
            not 1900 <= value <= REFERENCE_DATE.year + DATE_WINDOW_YEARS:
        problems["date"].append(f"{path}={value!r}: year outside 1900..."
                                f"{REFERENCE_DATE.year + DATE_WINDOW_YEARS}")


def _string_problem(value: str, param: Param) -> tuple[str, str]:
    """(check name, reason) for a string of a checked kind, reason "" when fine (an enum
    member is checked by the schema check alone)."""
    if param.enum:
        return "schema", ""
    kind = checked_kind(words_of(param.name), param.description.lower(), param.pattern)
    if kind in ("date", "datetime"):
        return "date", _date_problem(value, param, kind)
    if kind == "time":
        return "date", "" if re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value) else \
            "not a 24-hour HH:MM time"
    if kind == "email":
        return "email", "" if EMAIL.fullmatch(value) else "not a well-formed e-mail address"
    if kind == "phone":
        return "phone", "" if PHONE.fullmatch(value) else "not an E.164 phone number"
    if kind == "url":
        return "url", _url_problem(value)
    return "schema", ""


def _date_problem(value: str, param: Param, kind: str) -> str:
    fmt = date_format(param) or DATE_FORMATS["iso" if kind == "date" else "datetime"]
    try:
        moment = dt.datetime.strptime(value, fmt)
    except ValueError:
        return f"does not parse as {fmt}"
    earliest = dt.date(1900, 1, 1)
    latest = REFERENCE_DATE.replace(year=REFERENCE_DATE.year + DATE_WINDOW_YEARS)
    if "birth" not in words_of(param.name) + " " + param.description.lower():
        earliest = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - DATE_WINDOW_YEARS)
    if not earliest <= moment.date() <= latest:
        return f"outside {earliest}..{latest}"
    return ""


def _url_problem(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not DOMAIN.fullmatch(parts.netloc) or \
            re.search(r"\s", value):
        return "not an absolute http(s) URL with a domain"
    return ""


def _check_pair(where: str, low: Param, high: Param, a: Any, b: Any,
                problems: dict[str, list[str]]) -> None:
    if not pair_in_order(a, low, b, high):
        problems["pair"].append(f"{where}: {low.name}={a!r} is not before {high.name}={b!r}")
