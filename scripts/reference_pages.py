"""The documentation's reference pages, generated from the code so that they cannot drift:
the config keys and every registry's names, every `hpc.Profile` field with its default and
range, every `hpc` command with its options. `mkdocs build` writes them through
`scripts/docs_hooks.py`; `tests/test_docs.py` compares them with the code.

    python scripts/reference_pages.py reference/cli.md     # print one page
"""

import argparse
import dataclasses
import io
import os
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("EQX_ON_ERROR", "nan")  # before neuralode (equinox) is imported


def _first_line(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


def _yaml_comments(path: pathlib.Path) -> dict[str, str]:
    """`key: value  # comment` lines of a YAML file: key (dotted under a parent) -> comment."""
    out, parent = {}, None
    for line in path.read_text().splitlines():
        match = re.match(r"^(\s*)([A-Za-z_][\w]*):\s*(.*?)\s*(?:#\s*(.*))?$", line)
        if not match:
            continue
        indent, key, _, comment = match.groups()
        if not indent:
            parent = key
        name = f"{parent}.{key}" if indent and parent else key
        out[name] = comment or ""
    return out


def _header(path: pathlib.Path) -> str:
    """A config file's leading comment block, as one line."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            lines.append(line.lstrip("#").strip())
    return " ".join(line for line in lines if line)


def config_page() -> str:
    """The config: `conf/config.yaml`, the groups and their options, the registries' names."""
    import neuralode
    from neuralode import _losses, _model, _orbits

    out = io.StringIO()
    out.write("# Config keys and choices\n\n")
    out.write("Generated from `conf/` and `neuralode`'s registries (`scripts/reference_pages.py`).\n\n")
    out.write("## The top-level config, `conf/config.yaml`\n\n")
    out.write("```yaml\n" + (ROOT / "conf" / "config.yaml").read_text().rstrip() + "\n```\n\n")
    out.write("## Config groups\n\n| group | option | what it is |\n| --- | --- | --- |\n")
    for group in sorted(p for p in (ROOT / "conf").iterdir() if p.is_dir()):
        for option in sorted(group.glob("*.yaml")):
            out.write(f"| `{group.name}` | `{option.stem}` | {_header(option).replace('|', '/')} |\n")
    registries = [
        ("feature_layer", {k: f for k, (f, _) in neuralode.FEATURE_LAYERS.items()}),
        ("output_head", {k: f for k, (f, _) in neuralode.OUTPUT_HEADS.items()}),
        ("activation", _model.ACTIVATIONS),
        ("solver.name", _model.SOLVERS),
        ("solver.adjoint", _model.ADJOINTS),
        ("solver.dtype", _model.DTYPES),
        ("loss.name", _losses.LOSSES),
    ]
    out.write("\n## Registries: the names a key accepts\n")
    for key, registry in registries:
        out.write(f"\n### `{key}`\n\n| name | what it is |\n| --- | --- |\n")
        for name, obj in registry.items():
            doc = (
                _first_line(getattr(obj, "__doc__", ""))
                if callable(obj) and key in ("feature_layer", "output_head", "loss.name")
                else ""
            )
            out.write(f"| `{name}` | {doc.replace('|', '/')} |\n")
    out.write(
        "\n### The study's head names (`output_head`), each one head above\n\n| study's name | head |\n| --- | --- |\n"
    )
    for alias, name in neuralode.HEAD_ALIASES.items():
        out.write(f"| `{alias}` | `{name}` |\n")
    families = sorted({name for name, _, _ in _orbits.FAMILIES})
    out.write(f"\n### `dataset.family`\n\n{', '.join(f'`{f}`' for f in families)}\n")
    return out.getvalue()


def profile_page() -> str:
    """Every `hpc.Profile` field (and `environment`'s) with its type, default, range and meaning."""
    from hpc import profile

    comments = _yaml_comments(ROOT / "conf" / "cluster" / "default.yaml")
    out = io.StringIO()
    out.write("# Cluster profile fields (`cluster.*`)\n\n")
    out.write(
        "Generated from `hpc.Profile` (types, defaults, ranges) and `conf/cluster/default.yaml` "
        "(meanings). A bad value is refused before anything is submitted, naming the field and "
        "what it allows.\n\n| field | type | default | allowed | meaning |\n| --- | --- | --- | --- | --- |\n"
    )
    for field in dataclasses.fields(profile.Profile):
        if field.name == "environment":
            continue
        kind, bound, nullable = profile.field_rule(field.name)
        bound = ", ".join(profile.SUBMIT_MODES) if field.name == "submit" else bound
        bound = ", ".join(b for b in (bound, "null" if nullable else "") if b)
        default = list(field.default) if isinstance(field.default, tuple) else field.default
        meaning = comments.get(field.name, "").replace("|", "/")
        out.write(f"| `{field.name}` | {kind} | `{_yaml(default)}` | {bound} | {meaning} |\n")
    out.write("\n`environment`, what each task runs in:\n\n| field | default | meaning |\n| --- | --- | --- |\n")
    for field in dataclasses.fields(profile.Environment):
        note = comments.get(f"environment.{field.name}", "")
        if field.name == "kind":
            note += f" (allowed: {', '.join(profile.ENVIRONMENT_KINDS)})"
        out.write(f"| `environment.{field.name}` | `{_yaml(field.default)}` | {note.replace('|', '/')} |\n")
    return out.getvalue()


def _yaml(value) -> str:
    """A default as `conf/cluster/default.yaml` writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if value == "" else str(value)


def cli_page() -> str:
    """Every `hpc` command's help, as `hpc <command> --help` prints it."""
    from hpc import cli

    os.environ["COLUMNS"] = "100"
    top = cli.parser()
    out = io.StringIO()
    out.write("# The `hpc` command\n\nGenerated from `hpc.cli.parser()`: each command's `--help`.\n\n")
    out.write("```text\n" + top.format_help().rstrip() + "\n```\n")
    for name, sub in subcommands(top).items():
        out.write(f"\n## `hpc {name}`\n\n```text\n{sub.format_help().rstrip()}\n```\n")
    return out.getvalue()


def subcommands(top: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's subcommands, name -> parser."""
    action = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def changelog_page() -> str:
    """`CHANGELOG.md`, as it is."""
    return (ROOT / "CHANGELOG.md").read_text()


PAGES = {
    "reference/config.md": config_page,
    "reference/profile.md": profile_page,
    "reference/cli.md": cli_page,
    "changelog.md": changelog_page,
}


if __name__ == "__main__":
    print(PAGES[sys.argv[1]]())
