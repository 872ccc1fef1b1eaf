"""Spelling variants agencies really produce (DESIGN.md section 4), applied at random.

Each function returns the changed name, or ``None`` when it does not apply to this
name; :func:`vary` picks among those that apply and says which it used, so the
ground truth records every variant kind present.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

ZWNJ = "\u200c"

_UPPER = {"علیا": "بالا", "بالا": "علیا", "اعلی": "علیا"}
_LOWER = {"سفلی": "پایین", "پایین": "سفلی", "پائین": "سفلی", "سفلا": "سفلی"}
_MIDDLE = {"وسطی": "میانی", "میانی": "وسطی"}
_PREFIXES = ("ده ", "قلعه ", "کلاته ", "چشمه ")


def arabic_letters(name: str) -> str | None:
    """Arabic ي and ك instead of Persian ی and ک (old software, Arabic keyboards)."""
    if "ی" not in name and "ک" not in name:
        return None
    return name.replace("ی", "ي").replace("ک", "ك")


def zwnj_space(name: str) -> str | None:
    """A space where another list has a zero-width non-joiner, or the other way round."""
    if ZWNJ in name:
        return name.replace(ZWNJ, " ")
    if " " in name:
        return name.replace(" ", ZWNJ, 1)
    return None


def abad_joined(name: str) -> str | None:
    """«آباد» written apart or joined: «حسین آباد» / «حسین‌آباد» / «حسینآباد»."""
    if " آباد" in name:
        return name.replace(" آباد", "آباد")
    if "آباد" in name and not name.startswith("آباد"):
        i = name.index("آباد")
        return name[:i].rstrip(ZWNJ) + " " + name[i:]
    return None


def upper_lower(name: str) -> str | None:
    """علیا/بالا, سفلی/پایین, وسطی/میانی swapped."""
    for table in (_UPPER, _LOWER, _MIDDLE):
        for word, other in table.items():
            if re.search(rf"(^|\s){word}($|\s)", name):
                return re.sub(rf"(^|\s){word}($|\s)", rf"\g<1>{other}\g<2>", name, count=1)
    return None


def connector_vav(name: str) -> str | None:
    """The connector «و» present or absent: «بویین و میاندشت» / «بویین میاندشت»."""
    if " و " in name:
        return name.replace(" و ", " ", 1)
    if name.count(" ") == 1 and len(name) > 8:
        return name.replace(" ", " و ", 1)
    return None


def final_hamza(name: str) -> str | None:
    """Final ء dropped or added: «بیضاء» / «بیضا»."""
    if name.endswith("اء"):
        return name[:-1]
    if name.endswith("ا") and len(name) > 3:
        return name + "ء"
    return None


def gaf_kaf(name: str) -> str | None:
    """گ typed as ک (old typewriters, Arabic keyboards): «هفتگل» / «هفتکل»."""
    return name.replace("گ", "ک", 1) if "گ" in name else None


def missing_madda(name: str) -> str | None:
    """آ written as ا, common in older lists."""
    return name.replace("آ", "ا", 1) if "آ" in name else None


def prefix(name: str) -> str | None:
    """A descriptive prefix (ده, قلعه, کلاته, چشمه) dropped."""
    for p in _PREFIXES:
        if name.startswith(p) and len(name) > len(p) + 2:
            return name[len(p) :]
    return None


def ligature_reversed(name: str) -> str | None:
    """Lam-alef reversed by PDF extraction: «گیلانغرب» read as «گیالنغرب»."""
    if "لا" in name:
        return name.replace("لا", "ال", 1)
    if "ال" in name[1:]:
        i = name.index("ال", 1)
        return name[:i] + "لا" + name[i + 2 :]
    return None


Variant = Callable[[str], str | None]
COMMON: dict[str, Variant] = {
    "arabic_letters": arabic_letters,
    "zwnj_space": zwnj_space,
    "abad_joined": abad_joined,
    "upper_lower": upper_lower,
    "connector_vav": connector_vav,
    "final_hamza": final_hamza,
    "gaf_kaf": gaf_kaf,
    "missing_madda": missing_madda,
    "prefix": prefix,
}
PDF_ONLY: dict[str, Variant] = {"ligature_reversed": ligature_reversed}


def vary(
    name: str, rng: random.Random, rate: float, kinds: dict[str, Variant]
) -> tuple[str, list[str]]:
    """With probability ``rate`` apply one applicable variant (rarely two)."""
    applied: list[str] = []
    for _ in range(2):
        if rng.random() >= rate:
            break
        options = [(k, out) for k, f in kinds.items() if (out := f(name)) and out != name]
        if not options:
            break
        kind, name = rng.choice(options)
        applied.append(kind)
        rate /= 4
    return name, applied
