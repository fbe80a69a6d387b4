"""The documentation: the README's shape, and the generated reference pages against the code
(every `hpc.Profile` field, every `hpc` command and option, every registry name and config
group option). `bash scripts/test.sh` also builds the site with `mkdocs build --strict`."""

import dataclasses
import importlib.util
import pathlib
import re

import pytest

from conftest import fenced_bash_block

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pages():
    spec = importlib.util.spec_from_file_location("reference_pages", ROOT / "scripts" / "reference_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_short_and_starts_with_the_two_set_up_commands():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200
    first_block = fenced_bash_block("README.md", "# neuralode-hpc").splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == ["bash scripts/train.sh", "bash scripts/test.sh"]


def test_every_page_of_the_navigation_exists_or_is_generated(pages):
    nav = re.findall(r":\s*([\w/-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M)
    assert "reference/cli.md" in nav and len(nav) > 10
    missing = [p for p in nav if not (ROOT / "docs" / p).exists() and p not in pages.PAGES]
    assert missing == []


def test_the_profile_page_lists_every_field_with_its_default(pages):
    from hpc import profile

    text = pages.profile_page()
    rows = dict(re.findall(r"^\| `([\w.]+)` \| [^|]* \| `([^`]*)` \|", text, re.M))
    for field in dataclasses.fields(profile.Profile):
        if field.name == "environment":
            continue
        assert field.name in rows, field.name
        default = list(field.default) if isinstance(field.default, tuple) else field.default
        assert rows[field.name] == pages._yaml(default), field.name
    for field in dataclasses.fields(profile.Environment):
        assert f"| `environment.{field.name}` |" in text
    assert "| `time_min` | an integer | `60` | >= 1 |" in text  # a field's range
    assert "| `submit` | a string | `auto` | auto, slurm, local |" in text  # a field's choices


def test_the_cli_page_lists_every_command_and_option(pages):
    from hpc import cli

    text = pages.cli_page()
    commands = pages.subcommands(cli.parser())
    assert {"status", "resubmit", "report", "runs", "pack", "diff"} <= set(commands)
    for name, parser in commands.items():
        section = text.split(f"## `hpc {name}`", 1)[1].split("\n## ", 1)[0]
        for action in parser._actions:
            for option in action.option_strings:
                assert option in section, (name, option)


def test_the_config_page_lists_every_registry_name_and_group_option(pages):
    import neuralode
    from neuralode import _losses, _model

    text = pages.config_page()
    names = [
        *neuralode.FEATURE_LAYERS,
        *neuralode.OUTPUT_HEADS,
        *neuralode.HEAD_ALIASES,
        *_model.ACTIVATIONS,
        *_model.SOLVERS,
        *_model.ADJOINTS,
        *_model.DTYPES,
        *_losses.LOSSES,
    ]
    for name in names:
        assert f"| `{name}` |" in text, name
    for option in (ROOT / "conf").glob("*/*.yaml"):
        assert f"| `{option.parent.name}` | `{option.stem}` |" in text, option


def test_every_benchmark_is_on_the_benchmarks_page_with_its_command():
    """Every figure the docs take from a benchmark can be traced to the command that made it:
    each script in `bench/` is named on the benchmarks page."""
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    scripts = sorted(p.name for p in (ROOT / "bench").iterdir() if p.suffix in (".py", ".sh") and p.stem != "__init__")
    assert len(scripts) >= 10
    assert [s for s in scripts if f"bench/{s}" not in page] == []
