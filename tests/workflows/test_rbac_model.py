"""The rehearsal's Azure RBAC model (tests/workflows/rbac_site/sitecustomize.py) refuses what Azure
refuses the release identity - any change of an online endpoint - and lets the rest through."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import run_cli

SITE = Path(__file__).parent / "rbac_site"

SCRIPT = textwrap.dedent('''
    import sys
    from mlops.errors import AuthError
    from mlops.workspace.local.workspace import LocalWorkspace
    from mlops.workspace.port import OnlineEndpointSpec

    ws = LocalWorkspace(sys.argv[1])
    results = []
    for what, call in [
        ("create", lambda: ws.ensure_online_endpoint(OnlineEndpointSpec(name="tcn-rbac", auth_mode="key"))),
        ("traffic", lambda: ws.set_traffic("tcn-rbac", {})),
        ("delete", lambda: ws.delete_online_endpoint("tcn-rbac")),
        ("lock", lambda: ws.acquire_release_lock("tcn-rbac", "release-1")),
    ]:
        try:
            call()
            results.append(f"{what}: allowed")
        except AuthError as error:
            results.append(f"{what}: refused: {error}")
        except Exception as error:
            results.append(f"{what}: {type(error).__name__}")
    print("\\n".join(results))
''')


@pytest.mark.parametrize(("denied", "expected"), [
    ("00000000-0000-0000-0000-00000000c1d0", {"create": "refused", "traffic": "refused",
                                              "delete": "refused", "lock": "allowed"}),
    ("", {"create": "allowed", "traffic": "allowed", "delete": "allowed", "lock": "allowed"}),
])
def test_the_release_identity_may_not_change_an_endpoint(tmp_path: Path, denied: str,
                                                          expected: dict[str, str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(SITE), "MLOPS_REHEARSAL_DENIED_CLIENT": denied}
    try:
        out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "ws")], env=env, capture_output=True,
                             text=True, timeout=120, check=True).stdout
    finally:
        down = run_cli("--workspace", f"local:{tmp_path / 'ws'}", "local", "down", timeout=120)
    assert down.returncode == 0 and not (tmp_path / "ws" / "host.json").exists(), down.stderr
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    assert {k: v.split(":")[0] for k, v in lines.items()} == expected, out
    if denied:
        assert "does not exist, and this identity may not create it" in lines["create"]
        assert "az ml online-endpoint create -f endpoints/online/endpoint.yml" in lines["create"]
        assert "onlineEndpoints/delete" in lines["delete"] and denied in lines["delete"]
        assert "only the production identity may change an online endpoint" in lines["traffic"]
