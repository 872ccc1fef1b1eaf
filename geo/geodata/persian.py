"""Persian text: the one place names are folded and digits made ASCII.

Every comparison of names goes through :func:`match_key`; every code typed by a
person goes through :func:`ascii_digits`. Display names keep their spelling.

Example:
    >>> match_key("گیلان‌غرب") == match_key("گيلان غرب")
    True
    >>> ascii_digits("۲۳۰۱")
    '2301'
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = [
    "ascii_digits",
    "is_code",
    "is_digits",
    "loose_key",
    "match_key",
    "match_key_sql",
    "normalize_code",
    "parse_number",
]

_DIGITS = {ord(c): str(i) for i, c in enumerate("۰۱۲۳۴۵۶۷۸۹")}
_DIGITS.update({ord(c): str(i) for i, c in enumerate("٠١٢٣٤٥٦٧٨٩")})

_LETTERS = str.maketrans(
    {
        "ي": "ی",
        "ى": "ی",
        "ئ": "ی",
        "ك": "ک",
        "ة": "ه",
        "ۀ": "ه",
        "أ": "ا",
        "إ": "ا",
        "ٱ": "ا",
        "آ": "ا",
        "ؤ": "و",
    }
)
# Diacritics (harakat, superscript alef), tatweel, joiners, marks and all white space.
_DROP = re.compile("[\u064b-\u065f\u0670\u0640\u200c\u200d\u200e\u200f\u00ad\\s]+")
_CODE = re.compile(r"^[0-9]+$")
_CODE_SEPARATORS = re.compile(r"[\s\-_/.‌]+")

# Variant knowledge (DESIGN.md section 4), applied word by word before folding.
_SYNONYMS = {
    "علیا": "بالا",
    "اعلی": "بالا",
    "عليا": "بالا",
    "بالا": "بالا",
    "سفلی": "پایین",
    "سفلا": "پایین",
    "پائین": "پایین",
    "پایین": "پایین",
    "سفلي": "پایین",
    "وسطی": "میانی",
    "میانی": "میانی",
    "وسطي": "میانی",
}
_PREFIXES = ("ده", "قلعه", "کلاته", "چشمه")
_ARABIC_KEYBOARD = str.maketrans({"گ": "ک", "چ": "ج", "پ": "ب", "ژ": "ز"})
_NOTES = re.compile(r"\([^)]*\)|\[[^\]]*\]")  # «(اسلامیه)», notes in parentheses
_PUNCT = re.compile(r"[_\-/.,،؛:;«»\"'!?()\[\]{}]+")


def ascii_digits(text: str) -> str:
    """Return ``text`` with Persian (۰–۹) and Arabic-Indic (٠–٩) digits made ASCII."""
    return text.translate(_DIGITS)


@lru_cache(maxsize=65536)
def match_key(name: str) -> str:
    """Fold a name to the key two spellings of one place share.

    NFKC (which also splits lam-alef and other presentation forms), Arabic letter
    forms to Persian, madda and hamza seats dropped, diacritics, tatweel, ZWNJ/ZWJ,
    direction marks and spaces removed, digits made ASCII.
    """
    text = unicodedata.normalize("NFKC", name)
    text = text.translate(_LETTERS)
    text = _DROP.sub("", text)
    return ascii_digits(text)


def match_key_sql(expression: str) -> str:
    """:func:`match_key` as a PostgreSQL expression over ``expression`` (text), written
    from the same tables (NFKC, the letter and digit maps, the dropped marks and space), so
    a filter can fold a stored column the way the service folds what it is asked
    (``tests/test_persian.py`` checks both give the same keys)."""
    letters = {**_LETTERS, **_DIGITS}
    source = "".join(chr(k) for k in letters)
    target = "".join(str(v) for v in letters.values())
    drop = _DROP.pattern.replace("\\s", "[:space:]")
    return (
        f"regexp_replace(translate(normalize({expression}, NFKC), '{source}', '{target}'),"
        f" '{drop}', '', 'g')"
    )


@lru_cache(maxsize=65536)
def loose_key(name: str) -> str:
    """A looser key for finding candidates (never for deciding alone).

    On top of :func:`match_key`: علیا/اعلی/بالا, سفلی/سفلا/پایین/پائین and وسطی/میانی are
    one word; the connector «و», a leading ده/قلعه/کلاته/چشمه and a leading «شهر جدید»
    (new towns: MOI's «شهر جدید پرند» is SCI's «پرند») are dropped; ء is dropped
    (ضیاءآباد/ضیاآباد, بیضاء/بیضا); notes in parentheses and punctuation are dropped; the
    Persian letters an Arabic keyboard lacks are their Arabic look-alikes (گ→ک, چ→ج, پ→ب,
    ژ→ز: کمشچه/کمشجه); «الله» is «اله» (عبدالله/عبداله); and «لا» is written «ال», so a
    lam-alef reversed by PDF extraction (گیالنغرب for گیلانغرب) meets its original.

    Example:
        >>> loose_key("گیالنغرب") == loose_key("گیلان غرب")
        True
        >>> loose_key("حسین آباد علیا") == loose_key("حسین‌آباد بالا")
        True
    """
    text = unicodedata.normalize("NFKC", name).translate(_LETTERS)
    text = _NOTES.sub(" ", text)
    words = [w for w in re.split(r"[\s\u200c]+", _PUNCT.sub(" ", text)) if w]
    words = [_SYNONYMS.get(w.replace("ء", ""), w.replace("ء", "")) for w in words if w != "و"]
    if len(words) > 2 and words[:2] == ["شهر", "جدید"]:
        words = words[2:]
    elif len(words) > 1 and words[0] in _PREFIXES:
        words = words[1:]
    key = match_key("".join(words)).replace("ء", "").translate(_ARABIC_KEYBOARD)
    return key.replace("الله", "اله").replace("لا", "ال")


def normalize_code(code: str) -> str:
    """A code typed by a person, made ASCII, without spaces, dashes, dots or slashes.

    Example:
        >>> normalize_code(" ۲۳-۰۱ ۰۳ ")
        '230103'
    """
    if code.isascii() and code.isdigit():  # the common case, kept fast for bulk imports
        return code
    return _CODE_SEPARATORS.sub("", ascii_digits(code.strip()))


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_number(text: str) -> float | None:
    """A number as people type it in a table, or None when the cell is not one: Persian or
    Arabic-Indic digits, «٫» or «.» for the decimal point, «٬», «,» or spaces between
    thousands, a leading «−».

    Example:
        >>> parse_number("۱٬۲۳۴٫۵")
        1234.5
    """
    cleaned = ascii_digits(text.strip()).replace("\u066b", ".").replace("\u2212", "-")
    cleaned = re.sub(r"[\u066c,\s\u200c\u00a0]", "", cleaned)
    if not _NUMBER.match(cleaned):
        return None
    return float(cleaned)


def is_digits(text: str) -> bool:
    """True for a non-empty string of ASCII digits only (``str.isdigit`` also takes «²»)."""
    return bool(_CODE.match(text))


def is_code(text: str) -> bool:
    """True when ``text`` (after :func:`normalize_code`) is a non-empty digit string."""
    return bool(_CODE.match(normalize_code(text)))
