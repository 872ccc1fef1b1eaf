"""Scripts run by other programs' interpreters (not pytest's): QGIS's Python."""
