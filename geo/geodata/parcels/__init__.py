"""Guide-plan parcel maps: read uploads, infer CRS, validate, publish as versions."""
