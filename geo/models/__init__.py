"""Tables of tagsim (DESIGN.md section 7). Import from here."""

from geo.models.access import ApiKey, AuditEntry, Policy, Principal
from geo.models.base import Base
from geo.models.changes import Change, DataChangeArea, DataVersion
from geo.models.crosswalk import (
    CrosswalkDecision,
    CrosswalkLink,
    CrosswalkRelease,
    CrosswalkRun,
)
from geo.models.jobs import JobProgress, TableJob
from geo.models.parcels import (
    GuidePlan,
    Parcel,
    ParcelExtent,
    ParcelStage,
    Plate,
    Upload,
    UploadFile,
)
from geo.models.registry import LEVELS, Agency, Division, DivisionEvent, Edition
from geo.models.subscriptions import Delivery, Subscription

__all__ = [
    "LEVELS",
    "Agency",
    "ApiKey",
    "AuditEntry",
    "Base",
    "Change",
    "CrosswalkDecision",
    "CrosswalkLink",
    "CrosswalkRelease",
    "CrosswalkRun",
    "DataChangeArea",
    "DataVersion",
    "Delivery",
    "Division",
    "DivisionEvent",
    "Edition",
    "GuidePlan",
    "JobProgress",
    "Parcel",
    "ParcelExtent",
    "ParcelStage",
    "Plate",
    "Policy",
    "Principal",
    "Subscription",
    "TableJob",
    "Upload",
    "UploadFile",
]
