"""JSON as clients expect it: ISO dates, Persian text as is, numbers from Decimal (the rules
of `api.ogc.request.json_default`, shared with the Flask-free OGC core)."""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider

from api.ogc.request import json_default


class TagsimJSON(DefaultJSONProvider):
    ensure_ascii = False
    sort_keys = False

    @staticmethod
    def default(o: Any) -> Any:
        try:
            return json_default(o)
        except TypeError:
            return DefaultJSONProvider.default(o)
