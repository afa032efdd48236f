"""Output files that mirror the audio tree, and the refusal of two inputs sharing one output.

Vector sidecars under `--save-dir` (`balr.data.lookup`) and DoubleMHA feature files under a
features folder (`balr.doublemha.data`) are placed at their recording's place below the
folder whose tree they mirror (`common_folder`, `mirrored_path`); two recordings that would
write one file (`shared_paths`) are refused by the caller, naming both. Paths are made
absolute with `.` and `..` removed, without following links (a dataset of links keeps its
own tree).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from balr.errors import DataError


def common_folder(
    paths: Iterable[str | os.PathLike],
    source: object,
    also: Iterable[str | os.PathLike] = (),
    why: str = "",
) -> Path | None:
    """The deepest folder holding the folder of every file of `paths` and the folders
    `also`; None when there are none. DataError naming `source` (then `why`) when they share
    no folder (e.g. files on two Windows drives)."""
    folders = {os.path.dirname(os.path.abspath(path)) for path in paths}
    folders |= {os.path.abspath(folder) for folder in also}
    if not folders:
        return None
    try:
        return Path(os.path.commonpath(sorted(folders)))
    except ValueError:
        raise DataError(f"{source}: the audio files share no common folder{why}") from None


def mirrored_path(path: str | os.PathLike, tree_root: str | os.PathLike, out_dir: Path) -> Path:
    """`path`'s place under `out_dir` mirroring the tree below `tree_root`; ValueError when
    `path` lies outside `tree_root`."""
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(tree_root))
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        raise ValueError(f"{path} is outside {tree_root}")
    return out_dir / relative


def shared_paths(paths: Iterable[str]) -> Iterator[tuple[int, int, str]]:
    """`(first index, index, path)` for each path (absolute) already given at an earlier
    index: two inputs that would write one output file."""
    owner: dict[str, int] = {}
    for index, path in enumerate(paths):
        first = owner.setdefault(path, index)
        if first != index:
            yield first, index, path
