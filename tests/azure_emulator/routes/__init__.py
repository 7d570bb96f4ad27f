"""The emulator's routing table: one module per resource group of the Azure ML REST surface.

A route module registers its handlers on ``ROUTES`` with ``@route(method, template, audience=...)``;
every module of this package is imported by ``load_all()`` (no list to edit: a new resource group is
a new file). Templates are matched against the URL path case-insensitively (ARM resource ids are
case-insensitive), ``{name}`` matches one path segment, and ``{WS}`` stands for the workspace prefix
``/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}``.

``audience`` says which token the caller must present (checked before the handler runs, 401 with
Azure's error shape otherwise - see ``tests.azure_emulator.server``): ``"arm"`` (the resource
manager of the emulator's cloud), ``"ml"`` (``https://ml.azure.com``, the data plane: run history,
batch invoke), ``"storage"``, or ``None`` (identity endpoints, the scoring host: they check
their own credentials).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WS = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"
LOCATION_OPS = "/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/locations/{location}"

Handler = Callable[[Any], Any]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler
    audience: str | None
    locked: bool = True
    """False: the handler runs without ``emulator.lock`` held (it takes the lock itself around state
    reads) - for the scoring host, whose deployments may take their time answering."""


class RouteTable:
    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, *, audience: str | None = "arm",
            locked: bool = True) -> None:
        expanded = template.replace("{WS}", WS).replace("{LOC}", LOCATION_OPS)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", re.escape(expanded).replace(r"\{", "{").replace(r"\}", "}"))
        pattern = re.compile(f"^{regex}/?$", re.IGNORECASE)
        if any(r.method == method.upper() and r.pattern.pattern == pattern.pattern for r in self._routes):
            raise ValueError(f"route {method} {template} is registered twice")
        self._routes.append(Route(method.upper(), template, pattern, handler, audience, locked))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None | str:
        """``(route, params)``; ``"method"`` when the path exists under another method; else None."""
        other = False
        for candidate in self._routes:
            found = candidate.pattern.match(path)
            if found is None:
                continue
            if candidate.method == method.upper():
                return candidate, found.groupdict()
            other = True
        return "method" if other else None

    def __len__(self) -> int:
        return len(self._routes)

    def templates(self) -> list[tuple[str, str]]:
        return [(r.method, r.template) for r in self._routes]


ROUTES = RouteTable()


def route(method: str, template: str, *, audience: str | None = "arm",
          locked: bool = True) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.add(method, template, handler, audience=audience, locked=locked)
        return handler

    return register


_loaded = False


def load_all() -> RouteTable:
    """Import every route module of this package once (each registers its routes on import)."""
    global _loaded
    if not _loaded:
        for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
            importlib.import_module(f"{__name__}.{module}")
        _loaded = True
    return ROUTES
