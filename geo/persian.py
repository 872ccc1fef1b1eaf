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

__all__ = ["ascii_digits", "is_code", "match_key", "normalize_code"]

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


def ascii_digits(text: str) -> str:
    """Return ``text`` with Persian (۰–۹) and Arabic-Indic (٠–٩) digits made ASCII."""
    return text.translate(_DIGITS)


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


def normalize_code(code: str) -> str:
    """Strip and make ASCII a code typed by a person; separators are not removed."""
    return ascii_digits(code.strip())


def is_code(text: str) -> bool:
    """True when ``text`` (after :func:`normalize_code`) is a non-empty digit string."""
    return bool(_CODE.match(normalize_code(text)))
