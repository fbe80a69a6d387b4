"""MkDocs hooks (`mkdocs.yml`: `hooks:`): add the generated reference pages
(`scripts/reference_pages.py`) to the site at build time, so they are made from the code of
the checkout being built and never stored."""

import importlib.util
import pathlib

from mkdocs.structure.files import File

_SPEC = importlib.util.spec_from_file_location(
    "reference_pages", pathlib.Path(__file__).with_name("reference_pages.py")
)
reference_pages = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(reference_pages)


def on_files(files, config):
    for path, make in reference_pages.PAGES.items():
        files.append(File.generated(config, path, content=make()))
    return files
