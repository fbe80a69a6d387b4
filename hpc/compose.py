"""Compose the runs of a large Hydra sweep quickly, into the configs Hydra itself would give.

Hydra composes every run from scratch (its config search, defaults tree and merges: about
0.1-0.2 s a run). A grid mostly varies values (`seed=`, `width=`, `lr=`) over a few
config-group choices, so `SweepComposer` composes once per distinct set of group choices (and
of any override it does not handle itself), then applies each run's value overrides to a plain
copy of that config as Hydra applies command-line values: after composition, on an existing
key (Hydra's configs are in struct mode), the value parsed by Hydra's own override parser,
interpolations resolved afterwards. Whatever this cannot do exactly (a key the config lacks, a
dict merged into a dict, an interpolation other than a whole `${dotted.key}`) goes to a full
Hydra compose of that run, which also raises Hydra's own errors. `tests/test_compose.py` holds
the two paths equal on grids that mix group choices and values.
"""

import copy
import dataclasses
import json
import re

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

_WHOLE = re.compile(r"^\$\{([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)\}$")
_INT = re.compile(r"^[1-9][0-9]{0,17}$|^0$")  # a decimal int as Hydra's grammar reads it (no sign, no _)


class NotPlain(Exception):
    """The fast path cannot apply this exactly: compose in full."""


def _lookup(tree, path: str):
    node = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise NotPlain(path)
        node = node[part]
    return node


def _resolve(node, root, depth: int = 0):
    """`node` with every whole-string `${a.b}` replaced by the (resolved) value it names."""
    if depth > 32:
        raise NotPlain("interpolation cycle")
    if isinstance(node, dict):
        return {k: _resolve(v, root, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, root, depth) for v in node]
    if isinstance(node, str) and "$" in node:
        match = _WHOLE.match(node)
        if match is None:
            raise NotPlain(node)  # string interpolation, resolvers, escapes: OmegaConf's job
        return _resolve(_lookup(root, match.group(1)), root, depth + 1)
    return node


def _set(tree: dict, path: str, value) -> None:
    """`OmegaConf.update(cfg, path, value, merge=True)` on a struct config, where that is a
    plain assignment to an existing key. The mappings on the way are copied before the one
    below is changed, so a `tree` copied only at its top leaves the base it came from as it was."""
    *parents, last = path.split(".")
    node = tree
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise NotPlain(path)
        node[part] = dict(node[part])
        node = node[part]
    if last not in node or isinstance(node[last], dict) or isinstance(value, dict):
        raise NotPlain(path)
    node[last] = copy.deepcopy(value)


class SweepComposer:
    """`resolved(overrides)` -> the run's resolved config as plain Python (no `hydra` node),
    equal to `OmegaConf.to_container(load_sweep_config(master, overrides), resolve=True)`."""

    def __init__(self, config_loader, master_config: DictConfig, groups):
        self.loader, self.master = config_loader, master_config
        self.groups = set(groups)
        self.parser = OverridesParser.create()
        self.parsed: dict[str, object] = {}
        self.ints: dict[str, str] = {}  # key -> a line `key=<int>` Hydra parsed (`_parse`)
        self.bases: dict[tuple, dict] = {}
        self.full = 0  # configs Hydra composed: one per base, plus each fallback

    def _parse(self, line: str):
        if line not in self.parsed:
            key, _, text = line.partition("=")
            template = self.parsed.get(self.ints.get(key))
            if template is not None and _INT.match(text):  # `seed=41` after `seed=40`: Hydra's int
                self.parsed[line] = dataclasses.replace(template, _value=int(text), input_line=line)
            else:
                self.parsed[line] = self.parser.parse_override(line)
                if _INT.match(text) and type(self.parsed[line]._value) is int:
                    self.ints[key] = line  # the first of its key parsed by Hydra: a template
        return self.parsed[line]

    def _is_value(self, override) -> bool:
        """A plain `key=value` on a key that is not a config group: applied after composition."""
        key = override.key_or_group
        return (
            not (override.is_add() or override.is_force_add() or override.is_delete())
            and override.package is None
            and key not in self.groups
            and not key.startswith("hydra")
            and "/" not in key
        )

    def full_compose(self, overrides: list[str]) -> DictConfig:
        """Hydra's own composition of one run, without its `hydra` node."""
        self.full += 1
        cfg = self.loader.load_sweep_config(self.master, list(overrides))
        with open_dict(cfg):
            del cfg["hydra"]
        return cfg

    def resolved(self, overrides: list[str]) -> dict:
        parsed = [self._parse(line) for line in overrides]
        key = tuple(line for line, o in zip(overrides, parsed) if not self._is_value(o))
        if key not in self.bases:
            self.bases[key] = OmegaConf.to_container(self.full_compose(list(key)), resolve=False)
        tree = dict(self.bases[key])  # `_set` copies what it changes; `_resolve` builds the rest anew
        try:
            for override in (o for o in parsed if self._is_value(o)):
                _set(tree, override.key_or_group, override.value())
            return _resolve(tree, tree)
        except NotPlain:
            return OmegaConf.to_container(self.full_compose(overrides), resolve=True)


def config_text(config: dict) -> str:
    """A resolved config as text a node reads back with `OmegaConf.create`: JSON (a subset of
    YAML, and far faster to write), or YAML where JSON cannot say it (inf, NaN)."""
    try:
        return json.dumps(config, allow_nan=False)
    except ValueError:
        return OmegaConf.to_yaml(OmegaConf.create(config))
