"""The crosswalk: the mapping between MOI, SCI and HF codes (built on `geo`)."""
