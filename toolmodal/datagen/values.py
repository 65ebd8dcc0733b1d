"""Argument values sampled from a parameter schema, and every surface form a value may take.

`sample_value` draws a canonical value of the declared type: dates near a fixed reference date
in the format the schema asks for, numbers inside their range and round the way people write
them, enum members, strings of the kind the parameter holds (`patterns.string_kind`: an e-mail
for `to`, a city for `location`...) drawn from `data/values`. `sample_arguments` draws a call's
arguments and `order_pairs` makes paired parameters agree (start before end, min below max,
check-in before check-out, latitude and longitude of one city). `surface_forms` lists the ways a
value may be written in a query (dates in words, numbers in words, units, 12-hour times...); the
query writer picks one, the semantic verifier accepts any.

Deliberately left out: locale-specific formats and constraints between more than two parameters.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
from functools import lru_cache
from typing import Any

from toolmodal.datagen.patterns import (
    DATE_FORMATS,
    REFERENCE_DATE,
    kind_value,
    satisfy_pattern,
    string_kind,
    value_lists,
)
from toolmodal.schema import Param, Tool

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
# (words in a name/description, short unit, long unit forms)
UNITS = [("km", "km", ["kilometers", "kilometres"]), ("meter", "m", ["meters", "metres"]),
         ("celsius", "°C", ["degrees Celsius"]), ("kg", "kg", ["kilograms"]),
         ("percent", "%", ["percent"]), ("minute", "min", ["minutes"]),
         ("second", "s", ["seconds"]), ("mile", "mi", ["miles"]), ("hour", "h", ["hours"])]
# words that put a date in the past of the reference date
_PAST = re.compile(r"\b(past|historical|earliest|since|after|modified|published|received|"
                   r"posted|created|observed|as of)\b")
# (lower word, upper word): parameters named alike but for these words are an ordered pair
ORDERED_WORDS = [("start", "end"), ("starts", "ends"), ("from", "to"), ("min", "max"),
                 ("minimum", "maximum"), ("lower", "upper"), ("low", "high"), ("in", "out"),
                 ("pickup", "dropoff"), ("departure", "return"), ("after", "before"),
                 ("since", "until"), ("earliest", "latest"), ("first", "last"),
                 ("begin", "end")]
_LOWER = {a: b for a, b in ORDERED_WORDS}
# integers named like these are identifiers, written in digits ("ID 11", never "ID eleven")
_IDENTIFIER = re.compile(r"\b(id|ids|number|no|code|year|port|version)$")


@lru_cache(maxsize=65536)
def words_of(name: str) -> str:
    """Split a snake/camel/kebab identifier into lower-case words: `maxResults` -> `max results`."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return re.sub(r"[_\-.\s]+", " ", spaced).strip().lower()


def number_words(n: int) -> str | None:
    """English words for 0..999 999 (`42` -> `forty-two`), None outside that range."""
    if n < 0 or n >= 1_000_000:
        return None
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    if n < 1000:
        rest = "" if n % 100 == 0 else " " + number_words(n % 100)
        return _ONES[n // 100] + " hundred" + rest
    rest = "" if n % 1000 == 0 else " " + number_words(n % 1000)
    return number_words(n // 1000) + " thousand" + rest


def kind_of(param: Param) -> str:
    """What a string parameter holds (see `patterns.string_kind`)."""
    return string_kind(words_of(param.name), param.description.lower(), param.pattern)


def date_format(param: Param) -> str | None:
    """The canonical strftime format a date or date-time parameter expects, or None."""
    if param.type != "string":
        return None
    return _date_format(kind_of(param), f"{param.description} {param.pattern or ''}".lower())


@lru_cache(maxsize=65536)
def _date_format(kind: str, text: str) -> str | None:
    if kind == "datetime":
        return DATE_FORMATS["datetime"]
    if kind != "date":
        return None
    if "mm/dd/yyyy" in text:
        return DATE_FORMATS["us"]
    if "dd.mm.yyyy" in text:
        return DATE_FORMATS["eu"]
    return DATE_FORMATS["iso"]


def unit_of(param: Param) -> tuple[str, list[str]] | None:
    """The unit a numeric parameter is measured in, read from its name or description."""
    return _unit_of(param.name, param.description)


@lru_cache(maxsize=65536)
def _unit_of(name: str, description: str) -> tuple[str, list[str]] | None:
    text = f" {words_of(name)} {description.lower()} "
    for key, short, long in UNITS:
        if re.search(rf"\b{key}s?\b", text):
            return short, long
    return None


def sample_arguments(tool: Tool, rng: random.Random, optional_rate: float) -> dict[str, Any]:
    """Required parameters always, each optional one with probability `optional_rate`; paired
    parameters then agree (`order_pairs`)."""
    args = {p.name: sample_value(p, rng) for p in tool.parameters
            if p.required or rng.random() < optional_rate}
    return order_pairs(tool.parameters, args, rng)


def sample_value(param: Param, rng: random.Random, depth: int = 0) -> Any:
    """Draw a canonical value of `param`'s declared type that respects its enum and range."""
    if param.enum:
        return rng.choice(list(param.enum))
    kind = param.type
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "integer":
        return _sample_int(param, rng)
    if kind == "number":
        return _sample_number(param, rng)
    if kind == "array":
        item = item_param(param)
        if item.type == "array":  # a matrix: rows of equal length
            return [[sample_value(item_param(item), rng, depth + 2) for _ in range(2)]
                    for _ in range(2)]
        return _dedupe([sample_value(item, rng, depth + 1) for _ in range(rng.randint(2, 3))])
    if kind == "object":
        return _sample_object(param, rng, depth)
    return _sample_string(param, rng)


def _sample_object(param: Param, rng: random.Random, depth: int) -> dict[str, Any]:
    """Required properties plus some optional ones (at least one); a free-form object gets one
    made-up entry."""
    if not param.properties:
        return {rng.choice(["name", "status", "label"]): rng.choice(value_lists()["topics"])}
    value = {p.name: sample_value(p, rng, depth + 1) for p in param.properties
             if p.required or rng.random() < 0.5}
    if not value:
        prop = rng.choice(param.properties)
        value[prop.name] = sample_value(prop, rng, depth + 1)
    return order_pairs(param.properties, value, rng)


def property_of(param: Param, key: str) -> Param:
    """Schema of `key` inside an object value; a free-form object's keys are plain strings."""
    if param.properties:
        return param.property(key)
    return Param(name=key, type="any")


def item_param(param: Param) -> Param:
    """The schema of an array's items, named and described like the array when they are not."""
    item = param.items or Param(type="string")
    if item.name and item.description:
        return item
    return item.model_copy(update={"name": item.name or param.name,
                                   "description": item.description or param.description})


def _dedupe(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


def _nice(value: float) -> float:
    """Round to two significant digits, as people pick limits (1200, 45, 0.35)."""
    if value == 0:
        return 0.0
    return round(value, 1 - int(math.floor(math.log10(abs(value)))))


def _sample_int(param: Param, rng: random.Random) -> int:
    low = int(param.minimum) if param.minimum is not None else 1
    high = int(param.maximum) if param.maximum is not None else max(low + 1, 120)
    near = (max(low, REFERENCE_DATE.year - 8), REFERENCE_DATE.year + 1 if param.maximum is None
            else min(high, REFERENCE_DATE.year + 1))
    if "year" in words_of(param.name).split() and near[0] <= near[1]:
        low, high = near
    elif param.maximum is None and rng.random() < 0.5:
        high = min(high, low + 20)  # small numbers so some are written in words
    if high - low <= 30:
        value = rng.randint(low, high)
    else:  # log-uniform and rounded: 300 seconds, 5000 characters, not 153421
        value = int(_nice(math.exp(rng.uniform(math.log(max(low, 1)), math.log(high)))))
    if unit_of(param) and unit_of(param)[0] == "min" and rng.random() < 0.3:
        value = rng.randint(1, 4) * 60  # whole hours, written "2 hours" in the query
    return min(max(value, low), high)


def _sample_number(param: Param, rng: random.Random) -> float:
    words = words_of(param.name).split()
    if {"latitude", "lat", "longitude", "lon", "lng"} & set(words):
        city = rng.choice(value_lists()["cities"])
        return city["lat"] if {"latitude", "lat"} & set(words) else city["lon"]
    low = param.minimum if param.minimum is not None else 0.0
    high = param.maximum if param.maximum is not None else low + 500.0
    if high - low <= 10:
        return round(rng.uniform(low, high), 1)
    value = _nice(math.exp(rng.uniform(math.log(max(low, 1.0)), math.log(high))))
    return float(min(max(value, low), high))


def _sample_string(param: Param, rng: random.Random) -> str:
    kind = kind_of(param)
    fmt = date_format(param)
    if fmt is not None:
        value = _date_value(param, fmt, rng)
    else:
        value = kind_value(kind, rng, words_of(param.name))
    if param.pattern is not None and not re.search(param.pattern, value):
        value = satisfy_pattern(param.pattern, kind, rng, f"parameter {param.name!r}")
    if param.max_length is not None:
        value = value[: param.max_length]
    return value


def _date_value(param: Param, fmt: str, rng: random.Random) -> str:
    """A day near the reference date: in the past for past-looking parameters (history, birth
    dates), else within the next six months; times on the quarter hour in the daytime."""
    text = f"{words_of(param.name)} {param.description.lower()}"
    if "birth" in text:
        day = dt.date(rng.randint(1950, 2006), rng.randint(1, 12), rng.randint(1, 28))
    elif _PAST.search(text):
        day = REFERENCE_DATE - dt.timedelta(days=rng.randint(1, 365))
    else:
        day = REFERENCE_DATE + dt.timedelta(days=rng.randint(0, 180))
    moment = dt.datetime(day.year, day.month, day.day, rng.randint(7, 20), 15 * rng.randint(0, 3))
    return moment.strftime(fmt)


def order_pairs(params: tuple[Param, ...], args: dict[str, Any],
                rng: random.Random) -> dict[str, Any]:
    """Make paired arguments agree: the lower of an ordered pair (`start_date`/`end_date`,
    `min_price`/`max_price`, `check_in`/`check_out`...) comes first, latitude and longitude
    come from one city. Returns a new dict; other arguments are unchanged."""
    out = dict(args)
    by_name = {p.name: p for p in params}
    for low, high in ordered_pairs(params):
        if low.name in out and high.name in out:
            out[low.name], out[high.name] = _ordered(low, high, out[low.name], out[high.name],
                                                     rng)
    lat = next((n for n in out if words_of(n) in ("lat", "latitude")), None)
    lon = next((n for n in out if words_of(n) in ("lon", "lng", "longitude")), None)
    if lat and lon and by_name[lat].type == by_name[lon].type == "number":
        city = rng.choice(value_lists()["cities"])
        out[lat], out[lon] = city["lat"], city["lon"]
    return out


def ordered_pairs(params: tuple[Param, ...]) -> list[tuple[Param, Param]]:
    """(lower, upper) parameter pairs whose values must be ordered: names equal but for one
    word of `ORDERED_WORDS`, both numbers or both dates/times."""
    return _ordered_pairs(params)


@lru_cache(maxsize=65536)
def _ordered_pairs(params: tuple[Param, ...]) -> list[tuple[Param, Param]]:
    pairs = []
    for low in params:
        for high in params:
            if _pair_names(words_of(low.name).split(), words_of(high.name).split()) and \
                    _comparable(low) and _comparable(high):
                pairs.append((low, high))
    return pairs


def _pair_names(a: list[str], b: list[str]) -> bool:
    if len(a) != len(b):
        return False
    diff = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    return len(diff) == 1 and _LOWER.get(diff[0][0]) == diff[0][1]


def _comparable(param: Param) -> bool:
    return param.type in ("integer", "number") or date_format(param) is not None or (
        param.type == "string" and kind_of(param) == "time")


def pairs_in_order(params: tuple[Param, ...], args: dict[str, Any]) -> bool:
    """Whether every ordered pair given in `args` is in order (start before end, min below max):
    `order_pairs` makes drawn values so, a value taken from a tool result or a model's call may
    not be. A pair whose values do not compare (a date that does not parse) is not judged here:
    that is the value checks' failure."""
    return all(pair_in_order(args[low.name], low, args[high.name], high)
               for low, high in ordered_pairs(params) if low.name in args and high.name in args)


def pair_in_order(a: Any, low: Param, b: Any, high: Param) -> bool:
    """Whether `a` (of `low`) comes before `b` (of `high`); True when they do not compare (a
    value that does not parse is the date check's failure, not the pair's)."""
    try:
        return sort_key(a, low) < sort_key(b, high)
    except (TypeError, ValueError):
        return True


def sort_key(value: Any, param: Param) -> Any:
    """A comparable key for a pair member: the number, or the parsed date/time."""
    if isinstance(value, (int, float)):
        return value
    fmt = date_format(param) or "%H:%M"
    return dt.datetime.strptime(value, fmt)


def _ordered(low: Param, high: Param, a: Any, b: Any, rng: random.Random) -> tuple[Any, Any]:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        a, b = sorted((a, b))
        if a == b and (high.maximum is None or b + 1 <= high.maximum):
            b = b + 1 if isinstance(b, int) else _nice(b * 1.5 + 1)
        return a, b
    start = sort_key(a, low)
    if date_format(high) is None:  # clock times: an hour or more later, same day
        if start < sort_key(b, high):
            return a, b
        end = start + dt.timedelta(hours=rng.randint(1, 8))
        return a, min(end, start.replace(hour=23, minute=45)).strftime("%H:%M")
    # days: the end follows the start by days, as a stay, a trip or a report period does
    end = start + dt.timedelta(days=rng.randint(1, 14), hours=rng.randint(0, 3))
    return a, end.strftime(date_format(high))


def surface_forms(value: Any, param: Param) -> list[str]:
    """All ways a scalar value may be written in a query; the first is the plain form.

    Arrays and objects have no single surface form: their leaves are grounded one by one.
    """
    if isinstance(value, bool):
        return _bool_forms(value, param)
    if isinstance(value, (int, float)):
        return _number_forms(value, param)
    if isinstance(value, str):
        return _string_forms(value, param)
    return [str(value)]


def _bool_forms(value: bool, param: Param) -> list[str]:
    words = words_of(param.name)
    if value:
        return [f"{words} enabled", f"with {words} on", f"{words}: yes", f"set {words} to true"]
    return [f"{words} disabled", f"with {words} off", f"{words}: no", f"set {words} to false"]


def _number_forms(value: int | float, param: Param) -> list[str]:
    plain = str(value)
    forms = [plain]
    if isinstance(value, int):
        if value >= 1000:
            forms.append(f"{value:,}")
        spelled = number_words(value)
        if spelled is not None and value <= 100 and not _IDENTIFIER.search(words_of(param.name)):
            forms.append(spelled)
    unit = unit_of(param)
    if unit is not None:
        short, longs = unit
        forms += [f"{plain} {short}"] + [f"{plain} {long}" for long in longs]
        if short == "min" and isinstance(value, int) and value % 60 == 0:
            hours = value // 60
            forms.append(f"{hours} hour" if hours == 1 else f"{hours} hours")
    return forms


def _string_forms(value: str, param: Param) -> list[str]:
    fmt = date_format(param)
    if fmt is not None:
        try:
            moment = dt.datetime.strptime(value, fmt)
        except ValueError:
            return [value]
        if fmt == DATE_FORMATS["datetime"]:
            return [value] + datetime_surfaces(moment)
        return [value] + date_surfaces(moment.date())
    if param.type == "string" and re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value) and \
            kind_of(param) == "time":
        return [value, clock12(dt.datetime.strptime(value, "%H:%M"))]
    forms = [value]
    if param.enum and re.search(r"[_\-]", value):
        forms.append(re.sub(r"[_\-]+", " ", value))
    return forms


def clock12(moment: dt.datetime) -> str:
    """A 12-hour clock time: `2:30 pm`, `9 am`."""
    hour12 = moment.hour % 12 or 12
    minutes = f":{moment.minute:02d}" if moment.minute else ""
    return f"{hour12}{minutes} {'pm' if moment.hour >= 12 else 'am'}"


def datetime_surfaces(moment: dt.datetime) -> list[str]:
    """A date surface plus a 24-hour or 12-hour clock time: `March 5, 2026 at 14:30`."""
    days = date_surfaces(moment.date())[:4]
    return ([f"{d} at {moment:%H:%M}" for d in days] + [f"{d}, {clock12(moment)}" for d in days]
            + [f"{moment:%Y-%m-%d %H:%M}"])


def date_surfaces(day: dt.date) -> list[str]:
    """Unambiguous ways to write a date: `March 5, 2026`, `5 March 2026`, `the 5th of March`..."""
    month = MONTHS[day.month - 1]
    suffix = "th" if 10 <= day.day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day.day % 10,
                                                                                     "th")
    return [f"{month} {day.day}, {day.year}", f"{day.day} {month} {day.year}",
            f"{month[:3]} {day.day} {day.year}", f"the {day.day}{suffix} of {month} {day.year}",
            day.isoformat()]
