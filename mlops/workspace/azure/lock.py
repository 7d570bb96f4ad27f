"""The release lock: the tag ``mlops.release-lock = holder@time`` on the online endpoint."""

from __future__ import annotations

from azure.ai.ml.entities import (
    ManagedOnlineEndpoint,
)

from mlops.errors import (
    ConflictError,
)
from mlops.workspace import azure_decisions as decide
from mlops.workspace import rules
from mlops.workspace.azure.calls import AzureCalls, _now, _tags
from mlops.workspace.azure_decisions import RELEASE_LOCK_TAG
from mlops.workspace.port import (
    ReleaseLock,
    no_progress,
)


class LockOps(AzureCalls):
    """The release lock: a tag on the online endpoint (see the package docstring)."""

    # release lock ----------------------------------------------------------------------------
    def get_release_lock(self, endpoint_name: str) -> ReleaseLock | None:
        entity = self._get_or_none(f"get online endpoint {endpoint_name}", self._ml.online_endpoints.get,
                                   name=endpoint_name)
        return None if entity is None else decide.parse_lock(endpoint_name, _tags(entity).get(RELEASE_LOCK_TAG))

    def acquire_release_lock(self, endpoint_name: str, holder: str) -> ReleaseLock:
        rules.check_endpoint_name(endpoint_name)
        entity = self._get_or_none(f"get online endpoint {endpoint_name}", self._ml.online_endpoints.get,
                                   name=endpoint_name)
        current = None if entity is None else decide.parse_lock(endpoint_name, _tags(entity).get(RELEASE_LOCK_TAG))
        conflict = decide.lock_conflict(current, holder)
        if conflict is not None:
            raise conflict
        if current is not None:
            return current  # the same holder resumes
        value = decide.format_lock(holder, _now())
        if entity is None:
            entity = ManagedOnlineEndpoint(name=endpoint_name, tags={RELEASE_LOCK_TAG: value})
        else:
            entity.tags = {**_tags(entity), RELEASE_LOCK_TAG: value}
        self._write_endpoint(f"take the release lock of online endpoint {endpoint_name}", entity, no_progress)
        after = self.get_release_lock(endpoint_name)
        if after is None or after.holder != holder:
            raise decide.lock_conflict(after, holder) or ConflictError(
                f"release lock of online endpoint {endpoint_name} was not kept; retry")
        return after

    def release_release_lock(self, endpoint_name: str, holder: str) -> None:
        entity = self._get_or_none(f"get online endpoint {endpoint_name}", self._ml.online_endpoints.get,
                                   name=endpoint_name)
        if entity is None:
            return
        current = decide.parse_lock(endpoint_name, _tags(entity).get(RELEASE_LOCK_TAG))
        if current is None:
            return  # already released
        if current.holder != holder:  # never remove another holder's lock
            raise ConflictError(f"the release lock of online endpoint {endpoint_name} is held by {current.holder!r} "
                                f"since {current.acquired_at}, not by {holder!r}; it was left in place")
        entity.tags = {k: v for k, v in _tags(entity).items() if k != RELEASE_LOCK_TAG}
        self._write_endpoint(f"release the release lock of online endpoint {endpoint_name}", entity, no_progress)
