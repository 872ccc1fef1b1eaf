"""Geodata: the division registry, guide-plan parcel maps, feature collections and tiles,
coverage, CRS, geodesic areas, dates and Persian text (the one module that folds names).

Owns: ``persian``, ``crs``, ``areas``, ``dates``, ``registry``, ``parcels``, ``features``.
May import: ``geo.platform``, ``geo.models``, ``geo.errors``.
"""
