"""Run by Debian's ``/usr/bin/python3`` with ``python3-qgis`` (never by the project's venv):
QGIS opens tagsim's ``parcels`` as an OAPIF layer, as a GIS office would, and prints what
it received as one JSON line.

    python3 qgis_oapif.py BASE_URL KEY SUBSET X0,Y0,X1,Y1

The key goes as HTTP Basic's password (QGIS 3.22 cannot add a header of its own). Two
readings: the whole layer under a subset filter (``setSubsetString``, a QGIS expression),
and the features in a rectangle with ``restrictToRequestBBOX`` on.
"""

from __future__ import annotations

import json
import sys

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsAuthMethodConfig,
    QgsFeatureRequest,
    QgsRectangle,
    QgsVectorLayer,
)


def _keys(layer: QgsVectorLayer, request: QgsFeatureRequest | None = None) -> list[list[str]]:
    features = layer.getFeatures(request) if request else layer.getFeatures()
    return sorted([str(f["village_code"]), str(f["parcel_no"])] for f in features)


def main(base: str, key: str, subset: str, rect: str) -> dict[str, object]:
    auth = QgsApplication.authManager()
    auth.setMasterPassword("tagsim-test", True)
    config = QgsAuthMethodConfig()
    config.setName("tagsim")
    config.setMethod("Basic")
    config.setConfig("username", "qgis")
    config.setConfig("password", key)
    auth.storeAuthenticationConfig(config)
    uri = f"url='{base}' typename='parcels' authcfg='{config.id()}' pageSize='1000'"
    layer = QgsVectorLayer(uri, "parcels", "OAPIF")
    out: dict[str, object] = {
        "qgis": Qgis.QGIS_VERSION,
        "valid": layer.isValid(),
        "fields": [f.name() for f in layer.fields()],
        "subset_accepted": layer.setSubsetString(subset),
    }
    out["subset"] = _keys(layer)
    boxed = QgsVectorLayer(uri + " restrictToRequestBBOX='1'", "boxed", "OAPIF")
    x0, y0, x1, y1 = (float(v) for v in rect.split(","))
    out["bbox"] = _keys(boxed, QgsFeatureRequest().setFilterRect(QgsRectangle(x0, y0, x1, y1)))
    return out


if __name__ == "__main__":
    app = QgsApplication([], False)
    app.initQgis()
    print(json.dumps(main(*sys.argv[1:5]), ensure_ascii=False))
    app.exitQgis()
