"""Name -> object lookups with errors that list the known names, and the error they raise."""


class FieldError(ValueError):
    """A bad value of one field, raised where it is found. `message` holds `{field}` where the
    field's name goes; `at(path)` names it as the user typed it (`solver.dtype` for a
    `ModelSpec`'s `dtype`), so a caller gives the path without rewriting the text."""

    def __init__(self, field: str, message: str, label: str = "`{}`"):
        self.field, self.message, self.label = field, message, label
        super().__init__(message.replace("{field}", label.format(field)))

    def at(self, path: str) -> "FieldError":
        """The same error, naming the field by `path`."""
        return FieldError(path, self.message)


def lookup(registry: dict, name: str, field: str):
    """Return `registry[name]`, or raise naming `field`, the bad value and the known names."""
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise FieldError(field, f"Unknown {{field}} {name!r}; known values: {known}.") from None


def canonical(registry: dict, aliases: dict, name: str, field: str) -> str:
    """The registry's own name for `name`: itself, or the name an alias stands for. Raises
    naming `field`, the bad value, the known names and the aliases."""
    if name in registry:
        return name
    if name in aliases:
        return aliases[name]
    raise FieldError(
        field,
        f"Unknown {{field}} {name!r}; known values: {', '.join(sorted(registry))} "
        f"(also accepted, the study's names: {', '.join(sorted(aliases))}).",
    )
