"""Argument values sampled from a parameter schema, and every surface form a value may take.

`sample_value` draws a canonical value of the declared type (dates normalised to the format the
schema asks for, numbers inside their range, enum members). `surface_forms` lists the ways the
same value may be written in a query (dates in several formats, numbers in words, units, hours
for minutes...); the query writer picks one, the semantic verifier accepts any. Names of
parameters steer what kind of string is drawn (a city for `location`, an e-mail for `to`...).

Deliberately left out: generating strings from arbitrary regex patterns (a sampled value that
misses a pattern is rejected by verification and counted) and locale-specific formats.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from functools import lru_cache
from typing import Any

from toolmodal.datagen.patterns import sample_pattern
from toolmodal.schema import Param

CITIES = ["Oslo", "Lyon", "Kyoto", "Lisbon", "Denver", "Nairobi", "Porto Alegre", "Hanoi",
          "Vancouver", "Edinburgh", "Marrakesh", "Tallinn", "Austin", "Bergen", "Cusco"]
COUNTRIES = ["Norway", "France", "Japan", "Portugal", "Kenya", "Brazil", "Canada", "Chile"]
PEOPLE = ["Ada Moreau", "Kenji Sato", "Priya Nair", "Lars Berg", "Amara Okafor", "Diego Ruiz",
          "Mei Lin", "Sofia Rossi", "Tomas Novak", "Hana Kim"]
TOPICS = ["solar panels", "sourdough bread", "electric bikes", "jazz festivals", "tax deadlines",
          "remote work", "coral reefs", "chess openings", "budget travel", "rust programming",
          "marathon training", "quarterly report", "vintage cameras", "home insurance"]
WORDS = ["alpha", "harbor", "maple", "orbit", "quartz", "summit", "velvet", "cobalt", "ember"]
LANGS = ["en", "fr", "de", "es", "ja", "pt", "it", "nl"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "NOK", "CAD", "BRL", "CHF"]
TICKERS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "SAP", "ASML", "SHOP"]
COUNTRY_CODES = ["NO", "FR", "JP", "PT", "KE", "BR", "CA", "DE", "US", "GB"]
AIRPORTS = ["OSL", "LYS", "KIX", "LIS", "DEN", "NBO", "POA", "HAN", "YVR", "EDI", "BER", "JFK"]
TIMEZONES = ["Europe/Oslo", "Europe/Lisbon", "Asia/Tokyo", "America/Denver", "Africa/Nairobi"]
TABLES = ["orders", "customers", "sales.orders", "inventory", "analytics.events"]
DATABASES = ["analytics", "crm_prod", "warehouse", "billing", "inventory_db"]
HANDLES = ["#release-planning", "#general", "#ops", "@lars.berg", "@mei_lin"]
# realistic strings tried first when a parameter has a pattern (see patterns.sample_pattern)
PATTERN_CANDIDATES = [*COUNTRY_CODES, *CURRENCIES, *AIRPORTS, *LANGS, *TICKERS, *TIMEZONES,
                      *TABLES, *HANDLES, "XNAS", "XLON", "XPAR", ":palm_tree:", ":rocket:", "x",
                      "t", "BA283", "LH 400", "SAVE2025", "WELCOME10"]
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
DATE_FORMATS = {"iso": "%Y-%m-%d", "us": "%m/%d/%Y", "eu": "%d.%m.%Y",
                "datetime": "%Y-%m-%dT%H:%M"}


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


def date_format(param: Param) -> str | None:
    """The canonical strftime format a date parameter expects, or None if it is not a date."""
    if param.type != "string":
        return None
    return _date_format(param.name, param.description, param.pattern or "")


@lru_cache(maxsize=65536)
def _date_format(name: str, description: str, pattern: str) -> str | None:
    text = f"{name} {description} {pattern}".lower()
    if "yyyy-mm-ddthh:mm" in text:
        return DATE_FORMATS["datetime"]
    if "mm/dd/yyyy" in text:
        return DATE_FORMATS["us"]
    if "dd.mm.yyyy" in text:
        return DATE_FORMATS["eu"]
    names = words_of(name).split()
    if "yyyy-mm-dd" in text or ("date" in names and "time" not in names):
        return DATE_FORMATS["iso"]
    return None


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
        count = rng.randint(2, 3)
        values = [sample_value(item, rng, depth + 1) for _ in range(count)]
        return _dedupe(values)
    if kind == "object":
        return _sample_object(param, rng, depth)
    return _sample_string(param, rng)


def _sample_object(param: Param, rng: random.Random, depth: int) -> dict[str, Any]:
    """Required properties plus some optional ones (at least one); a free-form object gets one
    made-up entry."""
    if not param.properties:
        return {rng.choice(["name", "status", "label"]): rng.choice(TOPICS)}
    value = {p.name: sample_value(p, rng, depth + 1) for p in param.properties
             if p.required or rng.random() < 0.5}
    if not value:
        prop = rng.choice(param.properties)
        value[prop.name] = sample_value(prop, rng, depth + 1)
    return value


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


def _sample_int(param: Param, rng: random.Random) -> int:
    low = int(param.minimum) if param.minimum is not None else 1
    high = int(param.maximum) if param.maximum is not None else max(low + 1, 120)
    if param.maximum is None and rng.random() < 0.5:
        high = min(high, low + 20)  # small numbers so some are written in words
    value = rng.randint(low, high)
    if unit_of(param) and unit_of(param)[0] == "min" and rng.random() < 0.3:
        value = rng.randint(1, 4) * 60  # whole hours, written "2 hours" in the query
    return value if (param.maximum is None or value <= param.maximum) else low


def _sample_number(param: Param, rng: random.Random) -> float:
    low = param.minimum if param.minimum is not None else 0.0
    high = param.maximum if param.maximum is not None else low + 500.0
    return round(rng.uniform(low, high), rng.choice([1, 2]))


def _sample_string(param: Param, rng: random.Random) -> str:
    fmt = date_format(param)
    if fmt is not None:
        day = dt.datetime(2025, 1, 1) + dt.timedelta(days=rng.randint(0, 700),
                                                     minutes=15 * rng.randint(28, 88))
        return day.strftime(fmt)
    value = _string_by_name(words_of(param.name), param.description.lower(), rng)
    if param.pattern is not None and not re.fullmatch(param.pattern, value):
        kind = string_kind(words_of(param.name), param.description.lower())
        preferred = {"city": AIRPORTS, "country": COUNTRY_CODES, "currency": CURRENCIES,
                     "language": LANGS, "ticker": TICKERS, "table": TABLES,
                     "timezone": TIMEZONES, "database": DATABASES}.get(kind, [])
        value = sample_pattern(param.pattern, rng, [preferred, PATTERN_CANDIDATES])
    if param.max_length is not None:
        value = value[: param.max_length]
    return value


_STRING_RULES = [(re.compile(pattern), kind) for pattern, kind in [
    (r"\b(email|recipient|sender)", "email"), (r"\b(url|link|website|endpoint)\b", "url"),
    (r"\b(path|file|filename|directory|folder)\b", "path"),
    (r"\b(timezone|time zone|tz)\b", "timezone"), (r"\b(time)\b", "time"),
    (r"\b(table)\b", "table"), (r"\b(database|db|connection)\b", "database"),
    (r"\b(city|location|place|destination|origin|address)\b", "city"),
    (r"\b(country)\b", "country"), (r"\b(currency)\b", "currency"),
    (r"\b(symbol|ticker)\b", "ticker"), (r"\b(lang|language|locale)\b", "language"),
    (r"\b(query|keyword|keywords|search|term|topic|q)\b", "topic"),
    (r"\b(name|user|username|author|attendee|contact|person|owner)\b", "person"),
    (r"\b(id|key|code|token|number)\b", "id"), (r"\b(sql|statement)\b", "sql"),
    (r"\b(expression|formula)\b", "expression"), (r"\b(subject|title)\b", "title"),
    (r"\b(body|message|text|content|note|comment|description)\b", "message")]]
_ENDPOINTS = re.compile(r"\b(to|from|cc|bcc)\b")


@lru_cache(maxsize=65536)
def string_kind(name: str, description: str) -> str:
    """What a string parameter holds, judged by its name first, then its description."""
    if _ENDPOINTS.search(name):
        return "email" if "email" in description or "@" in description else "city"
    if re.search(r"\bpath\b", description) and not re.search(r"\b(url|link)\b", name):
        return "path"
    for text in (name, description):
        for pattern, kind in _STRING_RULES:
            if pattern.search(text):
                return kind
    return "topic"


def _string_by_name(name: str, description: str, rng: random.Random) -> str:
    kind = string_kind(name, description)
    if kind == "email":
        return _email(rng)
    if kind == "url":
        return f"https://{rng.choice(WORDS)}.example.com/{rng.choice(WORDS)}"
    if kind == "path":
        return f"/home/user/{rng.choice(WORDS)}/{rng.choice(TOPICS).replace(' ', '_')}.txt"
    if kind == "time":
        return f"{rng.randint(7, 20):02d}:{rng.choice(['00', '15', '30'])}"
    if kind == "id":
        return f"{rng.choice(WORDS)[:3].upper()}-{rng.randint(1000, 9999)}"
    if kind == "sql":
        return f"SELECT * FROM {rng.choice(WORDS)} LIMIT {rng.randint(2, 50)}"
    if kind == "expression":
        return f"{rng.randint(2, 99)} * {rng.randint(2, 99)} + {rng.randint(1, 9)}"
    if kind == "title":
        return f"{rng.choice(TOPICS).capitalize()} update"
    if kind == "message":
        return (f"{rng.choice(['Reminder', 'Heads up', 'FYI'])}: {rng.choice(TOPICS)} "
                f"{rng.choice(['moved to Friday', 'is confirmed', 'needs review'])}")
    lists = {"city": CITIES, "country": COUNTRIES, "currency": CURRENCIES, "ticker": TICKERS,
             "language": LANGS, "person": PEOPLE, "topic": TOPICS, "table": TABLES,
             "timezone": TIMEZONES, "database": DATABASES}
    return rng.choice(lists[kind])


def _email(rng: random.Random) -> str:
    first, last = rng.choice(PEOPLE).lower().split()
    return f"{first}.{last}@{rng.choice(WORDS)}.example.com"


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
        if spelled is not None and value <= 100:
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
    forms = [value]
    if param.enum and re.search(r"[_\-]", value):
        forms.append(re.sub(r"[_\-]+", " ", value))
    return forms


def datetime_surfaces(moment: dt.datetime) -> list[str]:
    """A date surface plus a 24-hour or 12-hour clock time: `March 5, 2026 at 14:30`."""
    hour12 = moment.hour % 12 or 12
    clock12 = f"{hour12}:{moment.minute:02d} {'pm' if moment.hour >= 12 else 'am'}"
    days = date_surfaces(moment.date())[:4]
    return ([f"{d} at {moment:%H:%M}" for d in days] + [f"{d}, {clock12}" for d in days]
            + [f"{moment:%Y-%m-%d %H:%M}"])


def date_surfaces(day: dt.date) -> list[str]:
    """Unambiguous ways to write a date: `March 5, 2026`, `5 March 2026`, `the 5th of March`..."""
    month = MONTHS[day.month - 1]
    suffix = "th" if 10 <= day.day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day.day % 10,
                                                                                     "th")
    return [f"{month} {day.day}, {day.year}", f"{day.day} {month} {day.year}",
            f"{month[:3]} {day.day} {day.year}", f"the {day.day}{suffix} of {month} {day.year}",
            day.isoformat()]
