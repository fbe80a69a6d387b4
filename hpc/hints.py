"""Tell a Hydra app's user what was wrong with their input, in one message.

Hydra itself rejects an unknown key in a block of lines that names neither the app's short
names nor the closest valid key, and takes `+key=` for a key the app never reads;
`refuse_unknown` refuses both in one line before Hydra starts, for any config directory. `user_errors` turns a
`ValueError` (bad input, named by our checks) or a full disk into one line instead of a traceback.
"""

import contextlib
import difflib
import os
import pathlib
import sys

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from omegaconf import OmegaConf


def known_keys(conf_dir, primary: str = "config") -> set[str]:
    """Top-level names an override may start with: the primary config's keys, the config
    groups, and the keys that `# @package _global_` group options set."""
    conf_dir = pathlib.Path(conf_dir)
    keys = set(OmegaConf.load(conf_dir / f"{primary}.yaml")) | {"hydra"}
    for group in (p for p in conf_dir.iterdir() if p.is_dir()):
        keys.add(group.name)
        for option in group.glob("*.yaml"):
            if "@package _global_" in option.read_text().split("\n", 1)[0]:
                keys |= set(OmegaConf.load(option))
    return keys - {"defaults"}


def unknown_keys(args: list[str], known: set[str]) -> list[str]:
    """The keys of the overrides in `args` whose top-level name is not in `known`. `+key=`
    counts too: a key the app does not read would only be carried along unread (and `+x.y=`
    under a known `x` is the user's explicit choice). `~key` deletes one: never flagged."""
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException:
        return []  # Hydra reports a malformed override itself
    top = lambda key: key.split("/")[0].split(".")[0].split("@")[0]  # noqa: E731
    return [o.key_or_group for o in parsed if not o.is_delete() and top(o.key_or_group) not in known]


def hint(keys: list[str], known: set[str], short_names, groups) -> str:
    """One line for the unknown `keys`: each with the closest known names, then the valid
    short names and config groups."""
    said = []
    for key in keys:
        close = difflib.get_close_matches(key.lstrip("+").split(".")[0], sorted(known), n=3, cutoff=0.3)
        said.append(f"`{key}`" + (f" (closest: {', '.join(close)})" if close else ""))
    return (
        f"unknown key{'s' * (len(keys) > 1)} {'; '.join(said)}. Short names: {', '.join(short_names)}; "
        f"config groups: {', '.join(groups)}."
    )


def refuse_unknown(args: list[str], conf_dir, short_names, groups) -> None:
    """Exit with status 2 and one line (`hint`) when an override in `args` names a key that no
    config under `conf_dir` defines: before Hydra composes anything, so nothing is written."""
    known = known_keys(conf_dir) | set(short_names)
    unknown = unknown_keys(args, known)
    if unknown:
        print(f"Error: {hint(unknown, known, short_names, groups)}", file=sys.stderr)
        sys.exit(2)


@contextlib.contextmanager
def user_errors():
    """Inside, a `ValueError` prints `Error: <message>` and exits with status 2, a full disk
    (`disk full writing <path> (...; N bytes free)`) the same with status 1, and a run's
    failure that its result file (or note) records exits with status 1 and nothing more: the
    run's own line said why (`hpc.execute`). With `HYDRA_FULL_ERROR=1` each propagates with
    its traceback."""
    from .atomic import FULL
    from .run import recorded

    try:
        yield
    except Exception as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if recorded(exc):
            sys.exit(1)
        if isinstance(exc, ValueError) or (isinstance(exc, OSError) and exc.errno in FULL):
            print(f"Error: {exc.strerror if isinstance(exc, OSError) else exc}", file=sys.stderr)
            sys.exit(2 if isinstance(exc, ValueError) else 1)
        raise


def hydra_cli(main, conf_dir, short_names, groups) -> None:
    """Run a `@hydra.main` function, once its overrides name only keys the app knows
    (`refuse_unknown`)."""
    refuse_unknown(sys.argv[1:], conf_dir, short_names, groups)
    main()
