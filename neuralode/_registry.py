"""Name -> object lookups with errors that list the known names."""


def lookup(registry: dict, name: str, field: str):
    """Return `registry[name]`, or raise naming `field`, the bad value and the known names."""
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise ValueError(f"Unknown `{field}` {name!r}; known values: {known}.") from None
