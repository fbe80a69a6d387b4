"""Tell a Hydra app's user what was wrong with their input, in one message.

Hydra itself rejects an unknown key, but names neither the app's short names nor the closest
valid key; `unknown_keys` and `hint` add that, for any config directory. `user_errors` turns a
`ValueError` (bad input, named by our checks) into one line instead of a traceback.
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
    """The keys of the overrides in `args` whose top-level name is not in `known` (`+key=`
    adds a key and `~key` deletes one: both are the user's explicit choice, never flagged)."""
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException:
        return []  # Hydra reports a malformed override itself
    return [
        o.key_or_group
        for o in parsed
        if not (o.is_add() or o.is_force_add() or o.is_delete()) and o.key_or_group.split(".")[0] not in known
    ]


def hint(key: str, known: set[str], short_names, groups) -> str:
    """The message for one unknown `key`: the closest known name and the valid short names."""
    close = difflib.get_close_matches(key.split(".")[0], sorted(known), n=1)
    mean = f" Did you mean `{close[0]}`?" if close else ""
    return (
        f"Unknown key `{key}`.{mean}\nValid short names: {', '.join(short_names)}.\nConfig groups: {', '.join(groups)}."
    )


def explain(args: list[str], conf_dir, short_names, groups, file=sys.stderr) -> None:
    """Print `hint` for each override key in `args` that no config under `conf_dir` defines."""
    known = known_keys(conf_dir) | set(short_names)
    for key in unknown_keys(args, known):
        print(hint(key, known, short_names, groups), file=file)


@contextlib.contextmanager
def user_errors():
    """Inside, a `ValueError` prints `Error: <message>` and exits with status 2; with
    `HYDRA_FULL_ERROR=1` it propagates with its traceback."""
    try:
        yield
    except ValueError as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(2)


def hydra_cli(main, conf_dir, short_names, groups) -> None:
    """Run a `@hydra.main` function; when it exits with an error, `explain` the overrides."""
    try:
        main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            explain(sys.argv[1:], conf_dir, short_names, groups)
        raise
