"""The platform: the one owner of database connections and transactions, read replica
routing, the project's own PostgreSQL cluster, migrations, jobs and settings.

Owns: ``database`` (the only place that makes engines), ``routing``, ``cluster``,
``install``, ``replica``, ``migrate`` and ``migrations``, ``jobs``, ``config``.
May import: ``geo.errors``, ``geo.models``. Nothing of ``geodata``, ``access`` or ``changes``.
"""
