"""The thin wrapper's item query behind a bare Flask route: the floor any Flask app stands
on (no key, no policy, no audit, no headers), to read tagsim's item-by-id ratio against.

``gunicorn bench.thin_flask:app`` with ``THIN_DATABASE_URL`` set, as `bench.thin`.
"""

from __future__ import annotations

from flask import Flask, Response

from bench.thin import ITEM, _one

app = Flask(__name__)


@app.get("/items/<int:fid>")
def item(fid: int) -> Response:
    return Response(_one(ITEM, (fid,)), mimetype="application/geo+json")
