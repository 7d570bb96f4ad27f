"""Azure RBAC for the rehearsal: the release identity's role has ``NotActions`` on
``Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write`` (and ``delete``), so Azure
refuses every change of an online endpoint itself - its creation, traffic, mirror, tags - with 403
AuthorizationFailed, while deployments (``onlineEndpoints/deployments/*``), keys, batch endpoints and
the datastore stay allowed (Azure ML "Manage access to Azure Machine Learning workspaces", the
actions table; the README's custom role).

The rehearsal puts this folder on ``PYTHONPATH`` of every step of a job logged in as an identity
without that action (``MLOPS_REHEARSAL_DENIED_CLIENT`` names it). Python imports ``sitecustomize`` at
start; this one waits until the local workspace (standing in for Azure) is imported and wraps its
endpoint-changing port methods so they raise what the Azure adapter raises for Azure's 403. Nothing
else is touched, and other processes (locust, the host, the inference servers) never import it.
"""

from __future__ import annotations

import importlib.abc
import os
import sys

_CLIENT = os.environ.get("MLOPS_REHEARSAL_DENIED_CLIENT", "")
_TARGET = "mlops.workspace.local.workspace"


def _denied(what: str) -> Exception:
    from mlops.workspace import azure_decisions as decide

    detail = (f"AuthorizationFailed: The client '{_CLIENT}' does not have authorization to perform action "
              f"'{decide.ENDPOINT_WRITE_ACTION if 'delete' not in what else decide.ENDPOINT_WRITE_ACTION[:-5] + 'delete'}'")
    return decide.translate("forbidden", what, detail, status=403)


def _guard(cls: type) -> None:
    from mlops.workspace import azure_decisions as decide

    set_traffic, ensure = cls.set_traffic, cls.ensure_online_endpoint

    def guarded_set_traffic(self, endpoint_name, traffic, mirror_traffic=None, **kwargs):
        current = self.get_online_endpoint(endpoint_name)
        same_traffic = current is not None and {k: v for k, v in current.traffic.items() if v} == \
            {k: int(v) for k, v in traffic.items() if int(v)}
        same_mirror = mirror_traffic is None or (current is not None and {
            k: v for k, v in current.mirror_traffic.items() if v} == {k: int(v) for k, v in mirror_traffic.items() if int(v)})
        if not (same_traffic and same_mirror):
            raise _denied(f"set traffic of online endpoint {endpoint_name}")
        return set_traffic(self, endpoint_name, traffic, mirror_traffic, **kwargs)

    def guarded_ensure(self, spec, **kwargs):
        current = self.get_online_endpoint(spec.name)
        if current is None:
            from mlops.errors import AuthError

            raise AuthError(decide.endpoint_setup_hint(spec.name, str(_denied(f"create online endpoint {spec.name}"))))
        if {**current.tags, **dict(spec.tags)} != dict(current.tags):
            raise _denied(f"update tags of online endpoint {spec.name}")
        return ensure(self, spec, **kwargs)

    def guarded_delete(self, name, **kwargs):
        raise _denied(f"delete online endpoint {name}")

    cls.set_traffic, cls.ensure_online_endpoint, cls.delete_online_endpoint = \
        guarded_set_traffic, guarded_ensure, guarded_delete


class _AfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_guard(module):
            exec_module(module)
            _guard(module.LocalWorkspace)

        spec.loader.exec_module = exec_and_guard  # type: ignore[method-assign]
        return spec


if _CLIENT:
    sys.meta_path.insert(0, _AfterImport())
