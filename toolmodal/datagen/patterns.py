"""String values by kind: what a string parameter holds, a plausible value of that kind, and a
value that satisfies the parameter's regex `pattern`.

`string_kind` reads the kind (email, phone, date, city, currency, id...) from the strongest
signal first: the pattern (which known format fits it), format words in the description
("YYYY-MM-DD", "E.164", "ISO 4217"), then the parameter's name, then other description words.
`kind_value` draws a value of a kind from the lists in `data/values/*.yaml`. `satisfy_pattern`
builds a pattern-matching value from a known format when one fits; walking the parsed regex
(`sample_pattern`) is the last resort, for patterns no known format satisfies, and its result is
checked.

Deliberately left out: dates and numbers (`values.py` draws those) and locale-specific formats.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import string
from functools import cache, lru_cache
from re import _constants as C  # noqa: N812 - the regex parser's opcode names
from re import _parser as parser

import yaml

from toolmodal.datagen.config import VALUES_DIR
from toolmodal.paths import project_path

ALPHABET = string.ascii_letters + string.digits + "_-."
MAX_UNBOUNDED = 3
WALK_TRIES = 20
REFERENCE_DATE = dt.date(2025, 6, 2)  # "today" of the generated data; dates lie around it
DATE_FORMATS = {"iso": "%Y-%m-%d", "us": "%m/%d/%Y", "eu": "%d.%m.%Y",
                "datetime": "%Y-%m-%dT%H:%M"}
# kinds whose values have a checkable format (the validation gate checks these)
FORMAT_KINDS = ("date", "datetime", "time", "email", "url", "phone")
# kinds tried, in this order, for a pattern the parameter's own kind misses: words and codes
# before formats, so `^[a-z0-9._-]+$` gets a handle, not a date
FIT_ORDER = ("handle", "label", "table", "database", "country_code", "currency", "language",
             "airport", "ticker", "exchange", "flight", "coupon", "emoji", "variable", "id",
             "domain", "path", "passport", "email", "url", "phone", "date", "datetime", "time",
             "postal")
CODE_KINDS = {"country": "country_code", "city": "airport"}

# (regex over the description, kind): format words that fix the kind whatever the name says
_FORMAT_WORDS = [(re.compile(p), k) for p, k in [
    (r"yyyy-mm-ddthh:mm|iso 8601", "datetime"), (r"yyyy-mm-dd|mm/dd/yyyy|dd\.mm\.yyyy", "date"),
    (r"\bhh:mm\b", "time"), (r"e\.164", "phone"), (r"iso 4217", "currency"),
    (r"iso 639", "language"), (r"iso 3166", "country"), (r"\biata\b", "airport"),
    (r"iana time ?zone", "timezone"), (r"^e-?mail address", "email"),
    (r"\bsql statement", "sql"), (r"\burls?\b", "url"), (r"\bpath\b", "path")]]
# (regex over name words, then over description words, kind); the first match wins
_KIND_WORDS = [(re.compile(p), k) for p, k in [
    (r"\b(e-? ?mails?|recipients?|sender|cc|bcc)\b", "email"),
    (r"\b(phone|mobile|telephone)\b", "phone"),
    (r"\b(url|urls|link|website|endpoint|href|permalink|callback|webhook|redirect uri)\b",
     "url"),
    (r"\b(hash|checksum|digest|jwt|secret|password|signature|nonce|api key|secret key)\b",
     "secret"),
    (r"^(fields?|columns?|sort|sort by|order by|expand|select|group by)$", "field"),
    (r"^(order|direction|sort order|sort direction)$", "sort_order"),
    (r"^(page|offset|limit|length|page size|per page|count|size)$", "count"),
    (r"\b(timezone|time zone|tz)\b", "timezone"),
    (r"\b(birth|birthday)\b", "date"), (r"\b(date|day)\b", "date"),
    (r"(\bat|\b(timestamp|modified|published|created|updated|starts|ends|expires|as of|"
     r"active from|active until|since|until))$|^(start|end|begin|finish)$", "datetime"),
    (r"\bestimated delivery\b", "date"),
    (r"\btime\b", "time"), (r"\bvariable\b", "variable"), (r"\bemoji\b", "emoji"),
    (r"\bflight (number|no)\b", "flight"), (r"\b(coupon|promo|voucher)\b", "coupon"),
    (r"\bpassport\b", "passport"), (r"\b(pattern|glob)\b", "glob"), (r"\blike\b", "like"),
    (r"\b(delimiter|separator)\b", "delimiter"), (r"\b(schema|namespace)\b", "schema"),
    (r"\b(apartment|suite|line2)\b", "unit"), (r"\bregion\b", "region"),
    (r"\b(ids?|sid|gid|qid|jobid|key|token|reference|ref|passport number|number|cursor|"
     r"serial|vin)$", "id"),
    (r"\bchannel\b", "channel"), (r"\b(handles?|mentions|members)\b", "handle"),
    (r"\b(site|domains?)\b", "domain"), (r"\b(path|paths|file|filename|folder|directory|root)\b",
                                       "path"),
    (r"\btable\b", "table"), (r"\b(database|db|connection)\b", "database"),
    (r"\b(postal code|zip|postcode)\b", "postal"), (r"\b(address|street|line1)\b", "address"),
    (r"\b(city|location|place|destination|origin|waypoints?)\b", "city"),
    (r"\b(country|nationality)\b", "country"), (r"\bcurrency\b", "currency"),
    (r"\b(symbol|ticker)\b", "ticker"), (r"\bexchange\b", "exchange"),
    (r"\b(lang|language|locale)\b", "language"), (r"\b(company|brand)\b", "company"),
    (r"\bfirst name\b", "first_name"), (r"\b(last name|surname)\b", "last_name"),
    (r"^(username|user name|user|owner|assignee|login|screen name)$", "handle"),
    (r"\b(index|project|repo|repository|bucket|cluster|realm|app|application|service|queue|"
     r"pipeline|workspace|team|org|organization|collection|package|stack|environment|branch|"
     r"dataset|campaign|server)( name)?$", "resource"),
    (r"\btag( name)?$", "label"),
    (r"\b(name|user|username|author|attendees?|contact|person|owner|participants?|guest)\b",
     "person"),
    (r"\bproducts?\b", "product"), (r"\b(sql|statement)\b", "sql"),
    (r"\b(expression|formula|integrand)\b", "expression"),
    (r"\b(subject|title|headline)\b", "title"), (r"\blabel\b", "label"),
    (r"\b(query|keywords?|search|term|topic|q|contains)\b", "topic"),
    (r"\b(body|message|text|content|note|comment|description|instructions)\b", "message")]]


@cache
def value_lists() -> dict[str, list]:
    """Every list of `data/values/*.yaml`, by key (keys are unique across the files)."""
    lists: dict[str, list] = {}
    for path in sorted(project_path(VALUES_DIR).glob("*.yaml")):
        for key, items in yaml.safe_load(path.read_text(encoding="utf-8")).items():
            if key in lists:
                raise ValueError(f"{path}: list {key!r} is already defined in another file")
            lists[key] = items
    return lists


def string_kind(words: str, description: str, pattern: str | None = None) -> str:
    """What a string parameter holds, from its name words, description and pattern.

    Args:
        words: The parameter's name as lower-case words (`values.words_of`).
        description: Its description, lower-cased.
        pattern: Its regex pattern, if any.
    """
    return _kind(words, description, pattern or "", True) or "topic"


def checked_kind(words: str, description: str, pattern: str | None = None) -> str | None:
    """The kind as far as format words, the name and the pattern tell it, without the weaker
    description words; None when only those would decide. The validation gate checks this kind:
    a masked parameter (random name) then never gets a kind its value was not drawn for."""
    return _kind(words, description, pattern or "", False)


@lru_cache(maxsize=65536)
def _kind(words: str, description: str, pattern: str, weak: bool) -> str | None:
    kind = _kind_from_words(words, description, weak)
    if pattern and (kind is None or kind in FORMAT_KINDS and not _fits(kind, pattern)):
        # the pattern knows better (`end` of working hours is a clock time, not a date-time),
        # when it takes a format before any word or code (`^[A-Z0-9.-]{1,12}$` takes "PT")
        fitting = _fitting_kinds(pattern)
        if fitting and fitting[0] in FORMAT_KINDS:
            return fitting[0]
    return kind


def _kind_from_words(words: str, description: str, weak: bool) -> str | None:
    for regex, kind in _FORMAT_WORDS:
        if regex.search(description):
            return kind
    if re.fullmatch(r"(to|from)", words):
        if re.search(r"\b(city|airport|place)\b", description):
            return "city"
        # "Sender address or name.": the gate cannot call a bare name wrong
        return None if not weak and re.search(r"\bor (a )?name\b", description) else "email"
    # a bare `name` says less than its description ("Channel name without #...")
    texts = (description, words) if words == "name" else (words, description)
    for text in texts if weak else (words,):
        for regex, kind in _KIND_WORDS:
            if regex.search(text):
                return kind
    return None


@lru_cache(maxsize=4096)
def _fits(kind: str, pattern: str) -> bool:
    """Whether draws of `kind` satisfy `pattern` (probed with a fixed generator)."""
    rng = random.Random(0)
    compiled = re.compile(pattern)
    return all(compiled.search(kind_value(kind, rng)) for _ in range(5))


def kind_value(kind: str, rng: random.Random, words: str = "") -> str:
    """A plausible string of `kind` (see `string_kind`), drawn from `data/values` lists;
    `words` (the parameter's name words) give an identifier its prefix (`event id` -> `evn_`)."""
    lists = value_lists()
    city = rng.choice(lists["cities"])
    person = (rng.choice(lists["first_names"]), rng.choice(lists["last_names"]))
    word = rng.choice(lists["words"])
    simple = {
        "city": city["name"], "country": city["country"], "country_code": city["code"],
        "region": rng.choice(lists["regions"]), "airport": city["airport"],
        "timezone": city["timezone"], "person": " ".join(person), "first_name": person[0],
        "last_name": person[1], "address": f"{rng.randint(1, 120)} {rng.choice(lists['streets'])}"
        f", {city['name']}", "postal": f"{rng.randint(10000, 99999)}",
        "variable": "x", "label": rng.choice(lists["labels"]),
        "title": rng.choice(lists["titles"]), "message": rng.choice(lists["messages"]),
        "topic": rng.choice(lists["topics"]), "product": rng.choice(lists["products"]),
        "company": rng.choice(lists["companies"]), "table": rng.choice(lists["tables"]),
        "database": rng.choice(lists["databases"]), "emoji": rng.choice(lists["emojis"]),
        "domain": rng.choice(lists["web_domains"]), "flight": rng.choice(lists["flight_numbers"]),
        "coupon": rng.choice(lists["coupon_codes"]), "currency": rng.choice(lists["currencies"]),
        "language": rng.choice(lists["languages"]), "ticker": rng.choice(lists["tickers"]),
        "exchange": rng.choice(lists["exchanges"]),
        "channel": f"#{rng.choice(lists['titles']).lower().replace(' ', '-')}".replace(":", ""),
        "handle": f"{person[0]}.{person[1]}".lower().replace("ü", "u"),
        "email": f"{person[0]}.{person[1]}@{rng.choice(lists['email_domains'])}".lower()
                 .replace("ü", "u"),
        "url": f"https://{rng.choice(lists['web_domains'])}/{word}/{rng.randint(1, 999)}",
        "path": f"{rng.choice(lists['folders'])}/{rng.choice(lists['file_stems'])}."
                f"{rng.choice(lists['file_extensions'])}",
        "sql": f"SELECT * FROM {rng.choice(lists['tables'])} LIMIT {rng.choice([10, 20, 50, 100])}",
        "expression": f"{rng.choice(['x**2', 'sin(x)', 'exp(x)', '3*x + 1', 'x**3 - 2*x'])}",
        "id": f"{_abbreviation(words or word)}_{_alnum(rng, 10)}", "phone": _phone(rng),
        "passport": f"{rng.choice(string.ascii_uppercase)}{rng.randint(10**7, 10**8 - 1)}",
        "glob": rng.choice(lists["globs"]), "delimiter": rng.choice([",", ";", "|"]),
        "like": f"{rng.choice(lists['tables']).split('.')[-1][:5]}%",
        "schema": rng.choice(lists["schemas"]), "resource": rng.choice(lists["resource_names"]),
        "field": rng.choice(lists["field_names"]), "sort_order": rng.choice(lists["sort_orders"]),
        "count": str(rng.choice([5, 10, 20, 25, 50, 100])), "secret": _hex(rng, 16),
        "unit": f"Apt {rng.randint(1, 40)}{rng.choice('ABCD')}",
        "date": (REFERENCE_DATE + dt.timedelta(days=rng.randint(1, 180))).isoformat(),
        "datetime": f"{REFERENCE_DATE + dt.timedelta(days=rng.randint(1, 180))}T"
                    f"{rng.randint(8, 19):02d}:{rng.choice(['00', '15', '30', '45'])}",
        "time": f"{rng.randint(6, 21):02d}:{rng.choice(['00', '15', '30', '45'])}",
    }
    return simple[kind]


def _abbreviation(words: str) -> str:
    """Three letters for an identifier's prefix: the first word without later vowels."""
    head = words.split()[0]
    return (head[0] + re.sub(r"[aeiou]", "", head[1:]))[:3] if head else "id"


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choices("0123456789abcdef", k=n))


def _alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=n))


def _phone(rng: random.Random) -> str:
    """An E.164 number: a real calling code and the right count of national digits."""
    entry = rng.choice(value_lists()["phone_prefixes"])
    digits = str(rng.randint(2, 9)) + "".join(rng.choices(string.digits, k=entry["digits"] - 1))
    return entry["prefix"] + digits


def satisfy_pattern(pattern: str, kind: str, rng: random.Random, where: str) -> str:
    """A value matching `pattern`: of `kind` if one fits, else of another known kind or list
    entry that fits, else a checked walk of the regex.

    Raises:
        ValueError: Naming `where` and the pattern when no walk produced a matching string.
    """
    compiled = re.compile(pattern)
    for candidate in (kind, CODE_KINDS.get(kind, kind)):
        for _ in range(3):
            value = kind_value(candidate, rng)
            if compiled.search(value):
                return value
    fitting = _fitting_kinds(pattern)
    if fitting:
        return kind_value(fitting[0], rng)
    for _ in range(WALK_TRIES):
        value = sample_pattern(pattern, rng)
        if compiled.search(value):
            return value
    raise ValueError(f"{where}: no value found for pattern {pattern!r} (lookarounds or "
                     "backreferences are not supported by the sampler)")


@lru_cache(maxsize=4096)
def _fitting_kinds(pattern: str) -> tuple[str, ...]:
    return tuple(k for k in FIT_ORDER if _fits(k, pattern))


def sample_pattern(pattern: str, rng: random.Random) -> str:
    """A string drawn by walking the parsed regex (unbounded repeats capped); may miss
    lookarounds and backreferences, so callers check the result."""
    return "".join(_walk(parser.parse(pattern), rng))


def _walk(nodes: list, rng: random.Random) -> list[str]:
    out: list[str] = []
    for op, arg in nodes:
        if op is C.LITERAL:
            out.append(chr(arg))
        elif op is C.IN:
            out.append(_pick_class(arg, rng))
        elif op is C.ANY:
            out.append(rng.choice(string.ascii_lowercase))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
            low, high, sub = arg
            high = low + MAX_UNBOUNDED if high is C.MAXREPEAT else min(high, low + MAX_UNBOUNDED)
            for _ in range(rng.randint(low, max(low, high))):
                out += _walk(sub, rng)
        elif op is C.SUBPATTERN:
            out += _walk(arg[-1], rng)
        elif op is C.BRANCH:
            out += _walk(rng.choice(arg[1]), rng)
        elif op is C.CATEGORY:
            out.append(rng.choice(_category_chars(arg)))
    return out


def _pick_class(items: list, rng: random.Random) -> str:
    negate = any(op is C.NEGATE for op, _ in items)
    allowed = set()
    for op, arg in items:
        if op is C.LITERAL:
            allowed.add(chr(arg))
        elif op is C.RANGE:
            allowed.update(chr(c) for c in range(arg[0], arg[1] + 1))
        elif op is C.CATEGORY:
            allowed.update(_category_chars(arg))
    pool = sorted(set(ALPHABET) - allowed) if negate else sorted(allowed)
    return rng.choice(pool or list(ALPHABET))


def _category_chars(category: object) -> str:
    if category is C.CATEGORY_DIGIT:
        return string.digits
    if category is C.CATEGORY_SPACE:
        return " "
    if category is C.CATEGORY_WORD:
        return string.ascii_letters + string.digits + "_"
    return string.ascii_lowercase
