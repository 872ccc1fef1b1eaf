"""Serving places: feature collections (OGC API – Features), vector tiles, downloads, and
the coverage of registered plots and guide-plan zones."""
