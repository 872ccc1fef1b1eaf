"""Places and their storage: database, models, local PostGIS, registry, Persian text."""
