"""The crosswalk: the mapping between MOI, SCI and HF codes (built on `geo`)."""

from crosswalk.build import build, start_run
from crosswalk.quality import evaluate

__all__ = ["build", "evaluate", "start_run"]
