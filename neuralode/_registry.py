"""Name -> object lookups with errors that list the known names."""


def lookup(registry: dict, name: str, field: str):
    """Return `registry[name]`, or raise naming `field`, the bad value and the known names."""
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise ValueError(f"Unknown `{field}` {name!r}; known values: {known}.") from None


def canonical(registry: dict, aliases: dict, name: str, field: str) -> str:
    """The registry's own name for `name`: itself, or the name an alias stands for. Raises
    naming `field`, the bad value, the known names and the aliases."""
    if name in registry:
        return name
    if name in aliases:
        return aliases[name]
    raise ValueError(
        f"Unknown `{field}` {name!r}; known values: {', '.join(sorted(registry))} "
        f"(also accepted, the study's names: {', '.join(sorted(aliases))})."
    )
