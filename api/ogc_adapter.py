"""The Flask door of the OGC core (`api.ogc`): a request made plain, an answer made a
Flask response (pygeoapi's ``flask_app.execute_from_flask`` in miniature)."""

from __future__ import annotations

from flask import Response, g, request, stream_with_context

from api.database import app_db, get_conn
from api.ogc.request import OgcRequest, OgcResponse

__all__ = ["ogc_request", "respond"]


def ogc_request() -> OgcRequest:
    """The current request as the OGC core reads it."""
    return OgcRequest(
        root=request.url_root,
        url=request.base_url,
        args=request.args.to_dict(),
        conn=get_conn,
        db=app_db(),
        if_none_match=request.if_none_match.contains,
    )


def respond(answer: OgcResponse) -> Response:
    """The core's answer as a Flask response (chunks streamed within the request)."""
    if answer.audit_rows is not None:
        g.audit_rows = answer.audit_rows
    body = answer.body
    response = Response(
        body if isinstance(body, str | bytes) else stream_with_context(body),
        status=answer.status,
        mimetype=answer.media_type,
        headers=answer.headers,
    )
    if answer.etag is not None:
        response.set_etag(answer.etag)
    return response
