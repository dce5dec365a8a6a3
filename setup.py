"""Build step: the wheel carries the demo shop's content (the repository's nlu_data/ and flows/,
which stay the source of truth) as package data under bot/demo_content/. Everything else is in
pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONTENT = ("nlu_data", "flows")


class BuildWithContent(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the repository's folders
            return
        here = Path(__file__).resolve().parent
        target = Path(self.build_lib) / "bot" / "demo_content"
        for name in CONTENT:
            src = here / name
            if not src.is_dir():
                raise SystemExit(f"setup.py: {src} is missing (the demo content the wheel carries)")
            shutil.rmtree(target / name, ignore_errors=True)
            shutil.copytree(src, target / name, ignore=shutil.ignore_patterns("__pycache__"))


setup(cmdclass={"build_py": BuildWithContent})
