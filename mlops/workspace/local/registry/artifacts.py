"""Content-addressed artifacts: a folder is stored once per content hash, and never changes again.

Model registration and deployment code both go through here. Copying a deployment's code folder
means a later edit of the source tree cannot change what a running deployment executes, and the
content hash (relative paths + bytes) is what makes registration idempotent: the same bytes are
the same artifact, wherever they came from.

Layout: ``<workspace>/artifacts/sha256/<first two hex>/<hash>/...``. A copy is made into a
temporary sibling and renamed into place, so a crash never leaves a half artifact under its hash.
Python byte-code caches (``__pycache__``, ``*.pyc``) are not content: they are neither hashed nor
copied, so importing a scoring script locally never makes a "new" model or code version.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from mlops.workspace.hashing import content_files, content_hash


class ArtifactStore:
    """Immutable folders under ``root`` (``<workspace>/artifacts``), addressed by content hash."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest

    def put(self, source: Path) -> tuple[str, Path]:
        """Store ``source`` (a folder, or a single file) once; return ``(hash, stored folder)``."""
        digest = content_hash(source)
        dest = self.path_for(digest)
        if dest.is_dir():
            return digest, dest
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=dest.parent))
        try:
            for relative, file in content_files(source):
                target = staging / relative
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                shutil.copyfile(file, target)
                target.chmod(0o600)
            try:
                os.rename(staging, dest)
            except OSError:
                if not dest.is_dir():  # not a concurrent copy of the same content: a real failure
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return digest, dest
