"""Where the example projects are: inside the wheel (``audlang/examples``) or the checkout's ``examples/``."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

DEMO_PROJECT = "retail"


def example_path(name: str = DEMO_PROJECT) -> Path:
    packaged = resources.files("audlang").joinpath("examples", name)
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "examples" / name


def write_example(target: Path, name: str = DEMO_PROJECT) -> list[Path]:
    """Copy an example project into ``target``; files already there are kept, never overwritten."""
    source = example_path(name)
    written = []
    for path in sorted(source.rglob("*")):
        if path.is_dir() or "target" in path.relative_to(source).parts:
            continue
        destination = target / path.relative_to(source)
        if destination.exists():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        written.append(destination)
    return written
