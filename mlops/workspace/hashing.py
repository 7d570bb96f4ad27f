"""Content hashes: the identity of a model folder, shared by every workspace adapter.

sha256 over every file's relative path and bytes, so the same files hash the same wherever they
came from: registration is idempotent (local store and Azure's ``mlops.content_hash`` tag alike).
Python byte-code caches (``__pycache__``, ``*.pyc``) are not content: importing a scoring script
locally never makes a "new" version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from mlops.errors import UsageError

_CHUNK = 1 << 20


def _ignored(relative: Path) -> bool:
    return "__pycache__" in relative.parts or relative.suffix == ".pyc"


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
        if file.is_file() and not _ignored(relative):
            files.append((relative.as_posix(), file))
    yield from sorted(files)


def content_hash(path: Path) -> str:
    """sha256 over every file's relative path and bytes: equal iff the folders hold the same files."""
    digest = hashlib.sha256()
    count = 0
    for relative, file in content_files(path):
        count += 1
        file_digest = hashlib.sha256()
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                file_digest.update(chunk)
        digest.update(relative.encode())
        digest.update(b"\0")
        digest.update(file_digest.digest())
    if count == 0:
        raise UsageError(f"{path} holds no files")
    return digest.hexdigest()
