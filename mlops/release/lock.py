"""The release lock's one lifecycle: taken before a release changes the endpoint, held across
its steps (and across processes and GitHub jobs: the holder is the release id), released when the
release ends - on every exit path.

``holding(ctx)`` is the only code that takes or drops the lock. Every step that changes the
online endpoint runs inside it; nested use (``run_release`` around the steps it calls) takes the
lock once. On leaving the outermost block - by return or by exception - the lock is released
unless the release still holds the endpoint (``ReleaseStatus.holds_endpoint``: running, or its
gated candidate awaits the promotion), because such a release is still the endpoint's: it awaits
an approval, or was killed and will be resumed by the same command (same holder, so the re-run
re-acquires it).

``refuse_if_held`` is the read-only check a new release makes before it writes anything (not even
its record): a release that would be refused leaves no trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from mlops.errors import ConflictError, MlopsError
from mlops.workspace.port import Workspace

if TYPE_CHECKING:
    from mlops.release.context import ReleaseContext


def refuse_if_held(workspace: Workspace, endpoint: str, holder: str) -> None:
    """Raise ``ConflictError`` when another release holds ``endpoint``'s lock. Reads only."""
    lock = workspace.get_release_lock(endpoint)
    if lock is not None and lock.holder != holder:
        raise ConflictError(f"the release lock of endpoint {endpoint!r} is held by {lock.holder!r} since "
                            f"{lock.acquired_at}: another release is in progress; wait for it to finish (or end it "
                            "with `mlops rollback --record <its record>`)")


@contextmanager
def holding(ctx: ReleaseContext) -> Iterator[None]:
    """Hold the endpoint's release lock for the block (see the module docstring)."""
    outermost = ctx.lock_depth == 0
    if outermost:
        ctx.workspace.acquire_release_lock(ctx.endpoint, ctx.holder)
    ctx.lock_depth += 1
    try:
        yield
    finally:
        ctx.lock_depth -= 1
        if outermost and not ctx.record.status.holds_endpoint:
            _release(ctx)


def _release(ctx: ReleaseContext) -> None:
    try:
        ctx.workspace.release_release_lock(ctx.endpoint, ctx.holder)
    except MlopsError as error:  # the release's outcome stands; a stale lock is taken over by its holder
        ctx.progress(f"release lock of {ctx.endpoint} could not be released ({error}); the next step of "
                     f"{ctx.holder} takes it over, another release is refused until then")
