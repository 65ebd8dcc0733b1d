"""Docstring text as one plain line: reST directives, roles and markup removed, cut at a
sentence boundary. Used for Python functions' descriptions (`python_functions`) and the
real-world pool's descriptions (`datagen.pool`).

Deliberately left out: rendering math or tables (a literal block ends the text).
"""

from __future__ import annotations

import re

_DIRECTIVE = re.compile(r"^\.\. .*(?:\n(?:[ \t]+.*|[ \t]*)(?=\n|$))*", re.MULTILINE)
_ROLE = re.compile(r":[\w:.-]+:`~?([^`<]*?)\s*(?:<[^>]*>)?`")
# ``code``, `text`, **bold**, *emphasis* (not math like `x**n * y`), HTML tags, citations [1]_
_MARKUP = re.compile(r"``([^`]*)``|`([^`]*)`_{0,2}|(?<![\w*])\*\*(\w[^*]*?)\*\*(?![\w*])"
                     r"|(?<![\w*])\*(\w[^*]*?)\*(?![\w*])|</?[A-Za-z][^>]*>|\s*\[\w+\]_")
_LITERAL = re.compile(r"::[ \t]*(?:\n|$)")  # a reST literal block (code, a formula) follows
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


def clean(text: str, limit: int) -> str:
    """Docstring text as one plain line: directives, roles and markup removed, then `cut`.

    A literal block (`... defined as::` and the indented code after it) ends the text, and the
    sentence introducing it goes too, unless it is the first.
    """
    text = _DIRECTIVE.sub("", text)
    literal = _LITERAL.search(text)
    if literal:
        sentences = _SENTENCE_END.split(" ".join(text[:literal.start()].split()))
        text = " ".join(sentences[:-1]) if len(sentences) > 1 else sentences[0] + ":"
    text = _ROLE.sub(r"\1", text)
    text = _MARKUP.sub(lambda m: next((g for g in m.groups() if g is not None), ""), text)
    return cut(" ".join(text.split()), limit)


def cut(text: str, limit: int) -> str:
    """The longest run of whole sentences within `limit` characters (at least the first)."""
    if len(text) <= limit:
        return text
    sentences = _SENTENCE_END.split(text)
    out = sentences[0]
    for sentence in sentences[1:]:
        if len(out) + 1 + len(sentence) > limit:
            break
        out += " " + sentence
    return out
