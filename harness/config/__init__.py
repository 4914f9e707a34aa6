"""Config files: load, validate, expand into cells."""
