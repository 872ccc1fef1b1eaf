"""PostgreSQL plumbing: the project's own local cluster and the PostGIS install."""

from geo.pg.cluster import LocalCluster
from geo.pg.install import ensure_postgis_installed, postgres_bindir

__all__ = ["LocalCluster", "ensure_postgis_installed", "postgres_bindir"]
