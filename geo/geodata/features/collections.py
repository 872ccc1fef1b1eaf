"""The feature collections the service publishes (OGC API – Features), described once.

Each collection names its table, geometry, properties (SQL expressions), the query
parameters it filters on, the identity that ties the versions of one feature together, and
the access-control service that guards it. Queries, tiles, downloads and the API all read
these descriptions, so a new collection is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from geo.errors import NotFound

__all__ = ["COLLECTIONS", "Collection", "Filter", "get_collection"]


@dataclass(frozen=True)
class Filter:
    """A query parameter that filters a collection.

    ``kind``: ``text`` (equality), ``code`` (digits folded), ``name`` (compared through the
    Persian match key), ``int``, ``village`` (``AGENCY:CODE``, any agency's code) or
    ``within`` (the villages inside a division, any agency's code).
    """

    column: str
    kind: str = "text"
    description: str = ""


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    title_fa: str
    description: str
    service: str
    table: str  # FROM clause; the main table is aliased ``t``
    geometry: str  # SQL expression of the EPSG:4326 geometry
    geometry_type: str
    properties: tuple[tuple[str, str, str], ...]  # (name, SQL expression, JSON type)
    filters: dict[str, Filter] = field(default_factory=dict)
    versioned: bool = True  # rows carry valid_from / valid_to
    identity: tuple[str, ...] = ()  # columns shared by all versions of one feature
    entity_kind: str = ""  # its kind on the change feed
    min_zoom: int = 0
    shapefile_names: dict[str, str] = field(default_factory=dict)
    tile_properties: tuple[str, ...] = ()  # what a map needs; the rest is one click away
    dataset: str | None = None  # the owned dataset it shows (None: each list its agency's)
    titles_fa: dict[str, str] = field(default_factory=dict)  # properties' Persian titles

    @property
    def base_table(self) -> str:
        """The main table (``table`` without its alias and joins)."""
        return self.table.split()[0]

    @property
    def property_names(self) -> list[str]:
        return [name for name, _, _ in self.properties]


_VERSION_PROPS = (
    ("valid_from", "t.valid_from", "string"),
    ("valid_to", "t.valid_to", "string"),
)
# Persian titles of the properties (queryables and the web page say them)
_TITLES_FA = {
    "village_agency": "سازمان کد روستا",
    "village_code": "کد روستا",
    "parcel_no": "شماره قطعه",
    "land_use": "کاربری",
    "area_declared": "مساحت اعلام‌شده (متر مربع)",
    "area_m2": "مساحت (متر مربع)",
    "upload_id": "شناسه بارگذاری",
    "valid_from": "معتبر از",
    "valid_to": "معتبر تا",
    "plan_year": "سال طرح",
    "plan_version": "نسخه طرح",
    "registration_unit": "واحد ثبتی",
    "main_plate": "پلاک اصلی",
    "sub_plate": "پلاک فرعی",
    "source_notice": "اعلام مبدأ",
    "agency": "سازمان",
    "edition": "ویرایش فهرست",
    "code": "کد",
    "level": "سطح",
    "name": "نام",
    "parent_code": "کد واحد بالاتر",
    "national_id": "شناسه ملی",
    "population": "جمعیت",
}

_VILLAGE = Filter(
    "village",
    "village",
    "the village by any agency's code, AGENCY:CODE (e.g. sci:2301010001000101 or hf:…)",
)

_WITHIN = Filter(
    "village",
    "within",
    "the villages inside a division (a county, a province…) by any agency's code,"
    " AGENCY:CODE (e.g. sci:2310): codes nest",
)

PARCELS = Collection(
    id="parcels",
    dataset="parcels",
    title="Guide-plan parcels",
    title_fa="قطعات طرح هادی",
    description="Parcels of the rural guide plans' parcel maps (Housing Foundation), versioned.",
    service="parcels",
    table="parcel t",
    geometry="t.geom",
    geometry_type="MultiPolygon",
    properties=(
        ("village_agency", "t.village_agency", "string"),
        ("village_code", "t.village_code", "string"),
        ("parcel_no", "t.parcel_no", "string"),
        ("land_use", "t.land_use", "string"),
        ("area_declared", "t.area_declared", "number"),
        ("area_m2", "round(t.area_m2::numeric, 2)", "number"),
        ("upload_id", "t.upload_id", "integer"),
        *_VERSION_PROPS,
    ),
    filters={
        "village": _VILLAGE,
        "within": _WITHIN,
        "land_use": Filter("t.land_use", "name", "land use (کاربری), e.g. مسکونی"),
        "parcel_no": Filter("t.parcel_no", "text", "parcel number"),
        "upload_id": Filter("t.upload_id", "int", "the upload that published it"),
    },
    identity=("village_agency", "village_code", "parcel_no"),
    entity_kind="parcel",
    titles_fa=_TITLES_FA,
    min_zoom=12,
    tile_properties=("village_agency", "village_code", "parcel_no", "land_use", "area_m2"),
    shapefile_names={
        "village_agency": "v_agency",
        "village_code": "v_code",
        "area_declared": "area_decl",
        "valid_from": "valid_from",
    },
)

GUIDE_PLANS = Collection(
    id="guide_plans",
    dataset="parcels",
    title="Guide-plan zones",
    title_fa="محدوده طرح هادی",
    description="The planned zone of each village's rural guide plan, versioned.",
    service="parcels",
    table="guide_plan t",
    geometry="t.zone",
    geometry_type="MultiPolygon",
    properties=(
        ("village_agency", "t.village_agency", "string"),
        ("village_code", "t.village_code", "string"),
        ("plan_year", "t.plan_year", "integer"),
        ("plan_version", "t.plan_version", "string"),
        ("area_m2", "round(ST_Area(t.zone::geography)::numeric, 2)", "number"),
        ("upload_id", "t.upload_id", "integer"),
        *_VERSION_PROPS,
    ),
    filters={"village": _VILLAGE, "within": _WITHIN},
    identity=("village_agency", "village_code"),
    entity_kind="guide_plan",
    titles_fa=_TITLES_FA,
    min_zoom=8,
    tile_properties=("village_agency", "village_code", "plan_year"),
    shapefile_names={"village_agency": "v_agency", "village_code": "v_code"},
)

PLATES = Collection(
    id="plates",
    dataset="plates",
    title="Registered plots",
    title_fa="پلاک‌های ثبتی",
    description="Registered plots of the Registration Organization: unit, main and sub plate.",
    service="plates",
    table="plate t",
    geometry="t.geom",
    geometry_type="MultiPolygon",
    properties=(
        ("registration_unit", "t.registration_unit", "string"),
        ("main_plate", "t.main_plate", "string"),
        ("sub_plate", "t.sub_plate", "string"),
        ("area_m2", "round(ST_Area(t.geom::geography)::numeric, 2)", "number"),
        ("source_notice", "t.source_notice", "string"),
        *_VERSION_PROPS,
    ),
    filters={
        "registration_unit": Filter("t.registration_unit", "code", "registration unit"),
        "main_plate": Filter("t.main_plate", "code", "main plate (پلاک اصلی)"),
        "sub_plate": Filter("t.sub_plate", "code", "sub plate (پلاک فرعی)"),
    },
    identity=("registration_unit", "main_plate", "sub_plate"),
    entity_kind="plate",
    titles_fa=_TITLES_FA,
    min_zoom=12,
    tile_properties=("registration_unit", "main_plate", "sub_plate"),
    shapefile_names={"registration_unit": "reg_unit", "source_notice": "notice"},
)

DIVISIONS = Collection(
    id="divisions",
    title="Country divisions",
    title_fa="تقسیمات کشوری",
    description=(
        "Units of each agency's edition in force (MOI, SCI, HF): the boundary where known,"
        " otherwise the point."
    ),
    service="divisions",
    table="division t JOIN edition e ON e.id = t.edition_id",
    geometry="coalesce(t.polygon, t.point)",
    geometry_type="Geometry",
    properties=(
        ("agency", "e.agency", "string"),
        ("edition", "e.label", "string"),
        ("code", "t.code", "string"),
        ("level", "t.level", "string"),
        ("name", "t.name", "string"),
        ("parent_code", "t.parent_code", "string"),
        ("national_id", "t.national_id", "string"),
        ("population", "t.population", "integer"),
    ),
    filters={
        "agency": Filter("e.agency", "text", "moi, sci or hf"),
        "level": Filter("t.level", "text", "province, county, district, rural, city, village"),
        "code": Filter("t.code", "code", "the unit's code"),
        "parent_code": Filter("t.parent_code", "code", "the parent unit's code"),
        "name": Filter("t.name_key", "name_key", "name, compared by its Persian match key"),
    },
    versioned=False,
    entity_kind="division",
    titles_fa=_TITLES_FA,
    min_zoom=0,
    tile_properties=("agency", "code", "level", "name"),
    shapefile_names={"parent_code": "parent", "national_id": "nat_id", "population": "pop"},
)

COLLECTIONS: dict[str, Collection] = {c.id: c for c in (PARCELS, GUIDE_PLANS, PLATES, DIVISIONS)}


def get_collection(collection_id: str) -> Collection:
    try:
        return COLLECTIONS[collection_id]
    except KeyError:
        raise NotFound(
            f"no collection {collection_id!r}; there are {', '.join(COLLECTIONS)}",
            code="unknown_collection",
        ) from None
