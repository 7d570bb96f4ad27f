"""``AzureOptions``: the adapter's waits, retries, clocks and HTTP post as one typed object, set whole or by name."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlops.workspace.azure import AzureWorkspace
from mlops.workspace.azure.calls import AzureOptions

CLIENT = SimpleNamespace(subscription_id="sub", resource_group_name="rg", workspace_name="ws")


@pytest.mark.parametrize(("options", "by_name", "expected"), [
    (None, {}, AzureOptions()),
    (None, {"retry_base": 1.0}, AzureOptions(retry_base=1.0)),
    (AzureOptions(retry_base=2.0, poll_interval=1.0), {}, AzureOptions(retry_base=2.0, poll_interval=1.0)),
    (AzureOptions(retry_base=2.0, poll_interval=1.0), {"poll_interval": 3.0},
     AzureOptions(retry_base=2.0, poll_interval=3.0)),
])
def test_a_name_given_wins_over_the_options_object(options, by_name, expected) -> None:
    workspace = AzureWorkspace(CLIENT, options=options, **by_name)  # type: ignore[arg-type]
    assert workspace.options == expected


def test_an_unknown_option_is_refused() -> None:
    with pytest.raises(TypeError, match="poll_intervall"):
        AzureWorkspace(CLIENT, poll_intervall=3.0)  # type: ignore[arg-type]
