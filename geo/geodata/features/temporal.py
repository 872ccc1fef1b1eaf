"""The ``datetime`` parameter of OGC API – Features: an instant or an interval.

An instant asks for the layer as it was then; an interval for every version valid at some
time within it (``..`` or an empty end is open). Dates may be Gregorian or Jalali
(``1402-05-12``, Persian digits too) and mean the start of that day, Tehran time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from geo.errors import InvalidParameter, ValidationError
from geo.geodata.dates import parse_date
from geo.geodata.persian import ascii_digits

__all__ = ["TimeFilter", "parse_datetime"]

TEHRAN = ZoneInfo("Asia/Tehran")


@dataclass(frozen=True)
class TimeFilter:
    start: datetime | None
    end: datetime | None
    instant: bool

    def sql(self, alias: str = "t") -> tuple[str, dict[str, datetime]]:
        """The WHERE fragment selecting the versions this filter asks for."""
        if self.instant:
            return (
                f"{alias}.valid_from <= :dt_at AND ({alias}.valid_to IS NULL"
                f" OR {alias}.valid_to > :dt_at)",
                {"dt_at": self.start},  # type: ignore[dict-item]
            )
        parts, params = [], {}
        if self.end is not None:
            parts.append(f"{alias}.valid_from <= :dt_end")
            params["dt_end"] = self.end
        if self.start is not None:
            parts.append(f"({alias}.valid_to IS NULL OR {alias}.valid_to > :dt_start)")
            params["dt_start"] = self.start
        return (" AND ".join(parts) or "TRUE"), params


def _instant(text: str) -> datetime:
    raw = ascii_digits(text.strip())
    if len(raw) <= 10:
        try:
            day = parse_date(raw)
        except ValidationError:
            raise InvalidParameter(
                f"datetime {text!r} is not a date or an RFC 3339 time", field="datetime"
            ) from None
        return datetime.combine(day, time(), TEHRAN)
    try:
        value = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise InvalidParameter(
            f"datetime {text!r} is not an RFC 3339 time (2024-05-01T10:00:00Z)",
            field="datetime",
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# What a datetime is written with (digits of any script, - : . / T Z + and spaces): other
# text is a malformed parameter (400); text of these that is no instant or interval is
# well-formed content that is wrong (422 ``invalid_datetime``).
DATETIME_PATTERN = r"^[0-9\u06F0-\u06F9\u0660-\u0669TZtz:.+/ -]+$"


def parse_datetime(value: str | None) -> TimeFilter | None:
    """None (the current layer), an instant, or an interval ``start/end``."""
    if value is None or not value.strip():
        return None
    if re.fullmatch(DATETIME_PATTERN, value) is None:
        raise InvalidParameter(
            f"datetime {value!r} is not a date or an RFC 3339 time", field="datetime"
        )
    try:
        return _parse_datetime(value)
    except InvalidParameter as exc:
        raise ValidationError(exc.message, code="invalid_datetime", field="datetime") from None


def _parse_datetime(value: str) -> TimeFilter:
    if value.count("/") != 1:  # an instant, or a Jalali date written 1402/05/12
        return TimeFilter(_instant(value), None, True)
    start_text, _, end_text = value.partition("/")
    start = None if start_text.strip() in {"", ".."} else _instant(start_text)
    end = None if end_text.strip() in {"", ".."} else _instant(end_text)
    if start is None and end is None:
        raise InvalidParameter("datetime ../.. asks for nothing; give one end", field="datetime")
    if start and end and start > end:
        raise InvalidParameter("datetime interval ends before it starts", field="datetime")
    return TimeFilter(start, end, False)
