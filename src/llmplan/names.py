"""One text rule for every name a user gives: scenario names, catalog ids, aliases and display
names (bundled, user files and stored overrides), and so run names, which are scenario names.

A name is refused (with one line saying which character and why) when it holds:

- a control character (Unicode category Cc: NUL, escape, tab, line breaks …) or a line or
  paragraph separator;
- an invisible formatting character (category Cf): bidi overrides and isolates (U+202A–U+202E,
  U+2066–U+2069, the marks U+200E/U+200F/U+061C), zero-width spaces, the BOM, soft hyphens.
  The zero-width (non-)joiners U+200C/U+200D, which some scripts need, are allowed;
- a private-use, unassigned or surrogate code point;
- letters of several scripts mixed the way look-alikes are made ("аdmin" with a Cyrillic а):
  one script, or the combinations UTS #39's "highly restrictive" level allows (Latin with Han,
  Hiragana and Katakana; Latin with Han and Bopomofo; Latin with Han and Hangul). Digits,
  punctuation and combining marks belong to every script.

Two names are the same name when their `name_key` is: NFKC normalisation and case folding
(UTS #39 / UAX #31 "NFKC_Casefold"), so "Ｓｍａｌｌ", "SMALL" and "small" are one name wherever
duplicates or shadowing are checked. Whole-script look-alikes (a name written entirely in
Cyrillic letters that look Latin) are not detected."""

from __future__ import annotations

import unicodedata

JOINERS = {"\u200c", "\u200d"}
HIGHLY_RESTRICTIVE = ({"Latin", "Han", "Hiragana", "Katakana"}, {"Latin", "Han", "Bopomofo"},
                      {"Latin", "Han", "Hangul"})
_SCRIPT_WORDS = {"CJK": "Han", "IDEOGRAPHIC": "Han"}


def name_key(name: str) -> str:
    """The form two names are compared in: NFKC, case-folded, NFKC again."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def _script(ch: str) -> str | None:
    """The script of a letter (from its Unicode name's first word), None for anything else."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    word = unicodedata.name(ch, "UNKNOWN").split(" ", 1)[0]
    if word in ("MODIFIER", "UNKNOWN"):
        return None
    return _SCRIPT_WORDS.get(word, word.title())


def scripts(name: str) -> set[str]:
    return {s for s in map(_script, unicodedata.normalize("NFKC", name)) if s}


def name_problem(name: object) -> str | None:
    """Why `name` breaks the text rule (see the module doc), or None."""
    if not isinstance(name, str):
        return f"expected text, got {type(name).__name__}"
    if name.isascii() and name.isprintable():
        return None  # printable ASCII: no control, formatting or private character, one script (Latin)
    for ch in name:
        cat = unicodedata.category(ch)
        code = f"U+{ord(ch):04X}"
        if cat == "Cc" or cat in ("Zl", "Zp"):
            return f"control character {code} ({unicodedata.name(ch, 'control')}) in a name; remove it"
        if cat == "Cf" and ch not in JOINERS:
            return (f"invisible formatting character {code} ({unicodedata.name(ch, 'format')}) in a name: bidi "
                    "overrides and zero-width characters make a name read differently from what it is; remove it")
        if cat in ("Co", "Cn", "Cs"):
            return f"character {code} in a name is unassigned, private-use or a surrogate; remove it"
    found = scripts(name)
    if len(found) > 1 and not any(found <= ok for ok in HIGHLY_RESTRICTIVE):
        return (f"{name[:60]!r} mixes {' and '.join(sorted(found))} letters, the way look-alike names are made; "
                "write it in one script")
    return None


def check_name(name: str, what: str = "name") -> str:
    """`name`, or ValueError naming `what` (pydantic validators and the loaders turn it into their error)."""
    why = name_problem(name)
    if why:
        raise ValueError(f"{what}: {why}" if what != "name" else why)
    return name
