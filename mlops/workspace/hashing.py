"""Content hashes: the one folder hash of the project, shared by every workspace adapter and the release.

sha256 over every file's relative (posix) path and the sha256 of its bytes, so the same files hash
the same wherever they came from:

* model folders: registration is idempotent (local store and Azure's ``mlops.content_hash`` tag
  alike) - ``content_hash(folder)``;
* the code snapshot a deployment runs (``mlops.packaging``): the release's ``mlops.code_hash`` tag
  is ``files_hash`` over the files the snapshot *would* hold, computed from the sources without
  copying them, and equal to ``content_hash`` of the staged copy.

Caches are not content (``is_cache``: ``__pycache__``, ``.pytest_cache``, ``*.pyc``, ``*.pyo``,
``.DS_Store``): importing a scoring script locally never makes a "new" version, and a staged
snapshot never carries them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePath

from mlops.errors import UsageError

_CHUNK = 1 << 20
_CACHE_DIRS = frozenset({"__pycache__", ".pytest_cache"})
_CACHE_SUFFIXES = frozenset({".pyc", ".pyo"})
_CACHE_NAMES = frozenset({".DS_Store"})


def is_cache(relative: PurePath) -> bool:
    """Whether a file (by its path relative to the folder) is a cache rather than content."""
    return (not _CACHE_DIRS.isdisjoint(relative.parts) or relative.suffix in _CACHE_SUFFIXES
            or relative.name in _CACHE_NAMES)


def content_files(path: Path) -> Iterator[tuple[str, Path]]:
    """``(relative posix path, file)`` for every file under ``path`` (or ``path`` itself), sorted."""
    if path.is_file():
        yield path.name, path
        return
    if not path.is_dir():
        raise UsageError(f"{path} is neither a file nor a folder")
    files = []
    for file in path.rglob("*"):
        relative = file.relative_to(path)
        if file.is_file() and not is_cache(relative):
            files.append((relative.as_posix(), file))
    yield from sorted(files)


def files_hash(files: Iterable[tuple[str, Path]], *, what: str = "the folder") -> str:
    """sha256 over ``(relative posix path, file)`` pairs, in sorted order: the one hash function.

    Raises ``UsageError`` when there is no file (an empty folder is not a version of anything).
    """
    digest = hashlib.sha256()
    count = 0
    for relative, file in sorted(files):
        count += 1
        file_digest = hashlib.sha256()
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                file_digest.update(chunk)
        digest.update(relative.encode())
        digest.update(b"\0")
        digest.update(file_digest.digest())
    if count == 0:
        raise UsageError(f"{what} holds no files")
    return digest.hexdigest()


def content_hash(path: Path) -> str:
    """sha256 over every file's relative path and bytes: equal iff the folders hold the same files."""
    return files_hash(content_files(path), what=str(path))
