"""The Flask application factory."""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from api import (
    admin,
    auth,
    changes,
    coverage,
    crosswalk,
    divisions,
    downloads,
    editions,
    errors,
    features,
    health,
    me,
    openapi,
    plates,
    ratelimit,
    subscriptions,
    tables,
    tiles,
    uploads,
    web,
)
from api.database import init_app as init_database
from api.database import init_unit_of_work
from api.endpoints import check_declared, reject_unknown_query
from api.jsonio import TagsimJSON
from api.params import reject_nul, reject_nul_in_form
from crosswalk.partners import CROSSWALK
from geo.geodata.features.tiles import parcel_tile_cache
from geo.geodata.registry.partners import install_partners
from geo.platform.config import settings


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app; ``test_config`` overrides settings (e.g. ``DATABASE_URL``).

    Without ``DATABASE_URL`` the URL comes from the environment
    (``TAGSIM_DATABASE_URL``) or the project's own cluster.
    """
    install_partners(CROSSWALK)  # geo asks the crosswalk for partners (a composition root)
    app = Flask(__name__)
    app.json = TagsimJSON(app)
    app.config.from_mapping(
        DATABASE_URL=None,
        MAX_CONTENT_LENGTH=512 * 1024 * 1024,
        RATE_LIMIT=os.environ.get("TAGSIM_RATE_LIMIT", ratelimit.DEFAULT_LIMIT),
        AUTH_FAILURE_LIMIT=os.environ.get("TAGSIM_AUTH_FAILURE_LIMIT", "60 per minute"),
        CORS_ORIGINS=[o for o in os.environ.get("TAGSIM_CORS_ORIGINS", "").split(",") if o],
        JSON_SORT_KEYS=False,
        CLOCK=time.time,  # the rate limits' time (tests give a fixed one)
        # parcel tiles kept per process, MB (0: none); see geo.geodata.features.tile_cache
        TILE_CACHE_MB=int(os.environ.get("TAGSIM_TILE_CACHE_MB", "256")),
    )
    app.config.from_prefixed_env("TAGSIM_FLASK")
    if test_config:
        app.config.update(test_config)

    app.config["TILE_CACHE"] = parcel_tile_cache(app.config["TILE_CACHE_MB"])
    init_database(app)
    app.before_request(reject_nul)
    errors.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(divisions.bp)
    app.register_blueprint(tables.bp)
    app.register_blueprint(editions.bp)
    app.register_blueprint(crosswalk.bp)
    app.register_blueprint(uploads.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(changes.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(features.bp)
    app.register_blueprint(tiles.bp)
    app.register_blueprint(coverage.bp)
    app.register_blueprint(plates.bp)
    app.register_blueprint(subscriptions.bp)
    app.register_blueprint(web.bp)
    app.register_blueprint(me.bp)
    app.register_blueprint(downloads.bp)
    auth.init_app(app)
    app.before_request(reject_nul_in_form)  # (after the key is checked: see auth)
    app.before_request(reject_unknown_query)
    init_unit_of_work(app)
    check_declared(app)  # a route without its declaration does not start
    if settings().behind_front:  # behind api.front's nginx: the client is one hop out
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=0)  # type: ignore[method-assign]
    return app
