"""Places and their storage, in four domain packages (see docs/architecture.md).

- ``geo.platform``: the one owner of database connections and transactions
  (:class:`geo.platform.database.Database`), the local cluster, migrations, jobs, settings.
- ``geo.geodata``: the division registry, parcel maps, features, CRS, areas, dates and
  Persian text.
- ``geo.access``: API keys, roles, the working group's policies, the audit.
- ``geo.changes``: the change feed, webhooks and plate notices.

``geo.models`` holds every table (the schema the migrations build) and ``geo.errors`` the
typed errors every package raises. Arrows point down only: changes → geodata, access →
platform; nothing in ``geo`` imports ``crosswalk``, ``api`` or Flask.
"""
