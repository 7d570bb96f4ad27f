"""The hashed locks, read and checked offline: ``requirements/release.txt`` (what every job that can
log in to Azure installs), ``requirements/dev.txt`` (the same plus the ``[dev]`` extra: ci.yml's
``make test LOCKED=requirements/dev.txt``) and ``requirements/lint.txt`` (ci.yml's linters, from
``requirements/lint.in``).

The lock is pip-compile's output (``make lock``: ``pip-compile --generate-hashes --allow-unsafe
--all-build-deps pyproject.toml``); every GitHub job that can mint the Azure OIDC token installs it
with ``pip install --require-hashes --no-deps``. Re-running pip-compile needs the package indexes,
so CI checks the lock against ``pyproject.toml`` without them, from pip-compile's own annotations:

* it was written by pip-compile with ``--generate-hashes`` (the header), and names no index or
  find-links location (the workflow chooses those: PyPI, plus torch's CPU index);
* every entry is an exact ``==`` pin with at least one sha256 hash (pip's hash-checking mode
  refuses the whole install otherwise);
* every runtime dependency of ``pyproject.toml`` is pinned at a version its specifier allows and is
  annotated ``# via mlops (pyproject.toml)``; no entry claims that annotation for a dependency
  ``pyproject.toml`` no longer has (a dependency removed without re-locking);
* every ``build-system.requires`` entry is pinned (the workflows build the project without build
  isolation, so the backend comes from the lock too);
* every ``# via`` names a locked package or ``pyproject.toml``, so nothing is pinned that nothing needs;
* torch is the CPU build (local version ``+cpu``): the default Linux wheel pulls several GB of CUDA.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.workflows.workflow_files import REPO

LOCK = REPO / "requirements" / "release.txt"
DEV_LOCK = REPO / "requirements" / "dev.txt"
LINT_LOCK = REPO / "requirements" / "lint.txt"
LINT_INPUT = REPO / "requirements" / "lint.in"
PYPROJECT = REPO / "pyproject.toml"
LINT_VIA = "-r requirements/lint.in"

ROOT = "mlops (pyproject.toml)"
BUILD = "mlops (pyproject.toml::build-system.requires)"

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<spec>[^;\\\s]*)\s*(?:;[^\\]*)?\\?\s*$")
_HASH = re.compile(r"--hash=sha256:(?P<hex>[0-9a-f]{64})\b")
_MARKER_ENVIRONMENT = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
                       "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
                       "implementation_name": "cpython", "platform_python_implementation": "CPython"}
"""What the lock is compiled for: GitHub's ubuntu-latest (x86_64) with setup-python's 3.11."""


@dataclass(frozen=True)
class Pin:
    name: str
    spec: str
    hashes: tuple[str, ...]
    via: frozenset[str]

    @property
    def version(self) -> Version | None:
        return Version(self.spec[2:]) if self.spec.startswith("==") and "*" not in self.spec else None


def parse_lock(text: str) -> dict[str, Pin]:
    """pip-compile's requirements format: a pin line, indented ``--hash`` lines, then ``# via`` lines."""
    pins: dict[str, Pin] = {}
    current: dict | None = None
    in_via = False

    def close() -> None:
        if current is not None:
            pins[current["name"]] = Pin(current["name"], current["spec"], tuple(current["hashes"]),
                                        frozenset(current["via"]))

    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not line[0].isspace() and not stripped.startswith("#") and not stripped.startswith("-"):
            close()
            match = _PIN.match(stripped)
            if match is None:
                raise ValueError(f"unreadable lock line: {line!r}")
            current = {"name": canonicalize_name(match["name"]), "spec": match["spec"], "hashes": [], "via": []}
            current["hashes"].extend(m["hex"] for m in _HASH.finditer(stripped))
            in_via = False
            continue
        if current is None:
            continue
        if stripped.startswith("--hash="):
            current["hashes"].extend(m["hex"] for m in _HASH.finditer(stripped))
        elif stripped.startswith("# via"):
            rest = stripped[len("# via"):].strip()
            in_via = not rest
            if rest:
                current["via"].append(rest)
        elif in_via and stripped.startswith("#   "):
            current["via"].append(stripped[1:].strip())
        elif not line[0].isspace():
            in_via = False
    close()
    return pins


def _via_name(entry: str) -> str:
    return entry if entry in (ROOT, BUILD) or entry.startswith("-r ") else str(canonicalize_name(entry))


def _format_problems(lock_text: str) -> tuple[list[str], dict[str, Pin]]:
    """What hash-checking mode needs of any lock: pip-compile's hashed output, no package location,
    exact pins with hashes, and every pin needed by something."""
    problems: list[str] = []
    header = "\n".join(line for line in lock_text.splitlines()[:12] if line.startswith("#"))
    if "autogenerated by pip-compile" not in header or "--generate-hashes" not in header:
        problems.append("the lock was not generated by `pip-compile --generate-hashes` (run `make lock`)")
    for line in lock_text.splitlines():
        if re.match(r"^\s*(-i|--index-url|--extra-index-url|-f|--find-links|--trusted-host)\b", line):
            problems.append(f"the lock names a package location ({line.strip()}): the workflows choose the "
                            "indexes, and hash-checking makes them unable to substitute a file")
    try:
        pins = parse_lock(lock_text)
    except ValueError as error:
        return [*problems, str(error)], {}
    for pin in pins.values():
        if pin.version is None:
            problems.append(f"{pin.name}{pin.spec} is not an exact == pin")
        if not pin.hashes:
            problems.append(f"{pin.name} has no --hash (pip --require-hashes refuses the install)")
        if not pin.via:
            problems.append(f"{pin.name} is pinned but nothing needs it (no '# via')")
        for entry in pin.via:
            name = _via_name(entry)
            if name not in (ROOT, BUILD) and not name.startswith("-r ") and name not in pins:
                problems.append(f"{pin.name} is needed 'via {entry}', which the lock does not pin")
    return problems, pins


def _pinned_within(requirements: list[Requirement], pins: dict[str, Pin], marker: str, what: str,
                   source: str) -> list[str]:
    """Each requirement pinned at a version it allows and recorded 'via' ``marker``; nothing else is."""
    problems: list[str] = []
    wanted = set()
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate(_MARKER_ENVIRONMENT):
            continue
        name = str(canonicalize_name(requirement.name))
        wanted.add(name)
        pin = pins.get(name)
        if pin is None:
            problems.append(f"{requirement} is {what} of {source} but the lock does not pin "
                            f"{requirement.name} (run `make lock`)")
            continue
        if pin.version is not None and not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"the lock pins {name}=={pin.version}, which {source}'s {requirement} "
                            "does not allow (run `make lock`)")
        if marker not in pin.via:
            problems.append(f"the lock does not record {name} as {what} of {source} ('# via {marker}')")
    for pin in pins.values():
        if marker in pin.via and pin.name not in wanted:
            problems.append(f"the lock pins {pin.name} as {what} of {source}, which it no longer is "
                            "(run `make lock`)")
    return problems


def lock_problems(pyproject_text: str, lock_text: str, *, extras: tuple[str, ...] = ()) -> list[str]:
    """Every way the lock disagrees with ``pyproject.toml`` (its dependencies, plus the optional
    ``extras``) or with hash-checking mode; [] when none."""
    problems, pins = _format_problems(lock_text)
    if not pins:
        return problems
    project = tomllib.loads(pyproject_text)
    direct = [Requirement(text) for text in project["project"].get("dependencies", [])]
    for extra in extras:
        direct += [Requirement(text) for text in project["project"].get("optional-dependencies", {}).get(extra, [])]
    build = [Requirement(text) for text in project.get("build-system", {}).get("requires", [])]
    for requirements, marker, what in ((direct, ROOT, "a dependency"), (build, BUILD, "a build requirement")):
        problems += _pinned_within(requirements, pins, marker, what, "pyproject.toml")
    torch = pins.get("torch")
    if torch is not None and (torch.version is None or torch.version.local != "cpu"):
        problems.append(f"torch is pinned as {torch.spec}, not the CPU build (+cpu): the default Linux wheel "
                        "pulls in CUDA (compile with torch's CPU index, see `make lock`)")
    return problems


def input_lock_problems(input_text: str, lock_text: str, pyproject_text: str, *, extra: str = "dev") -> list[str]:
    """The lint lock: hash-checking mode, every requirement of ``requirements/lint.in`` pinned as it says,
    and each of those allowed by pyproject.toml's ``[extra]`` (a laptop's linters are CI's)."""
    problems, pins = _format_problems(lock_text)
    if not pins:
        return problems
    wanted = [Requirement(line.split("#", 1)[0].strip()) for line in input_text.splitlines()
              if line.split("#", 1)[0].strip()]
    problems += _pinned_within(wanted, pins, LINT_VIA, "a requirement", "requirements/lint.in")
    dev = {str(canonicalize_name(r.name)): r for r in (Requirement(text) for text in
           tomllib.loads(pyproject_text)["project"].get("optional-dependencies", {}).get(extra, []))}
    for requirement in wanted:
        pin = pins.get(str(canonicalize_name(requirement.name)))
        allowed = dev.get(str(canonicalize_name(requirement.name)))
        if allowed is None:
            problems.append(f"requirements/lint.in's {requirement.name} is not in pyproject.toml's [{extra}]")
        elif pin is not None and pin.version is not None and not allowed.specifier.contains(pin.version):
            problems.append(f"the lint lock pins {requirement.name}=={pin.version}, which pyproject.toml's "
                            f"[{extra}] {allowed} does not allow")
    return problems


def read_problems(pyproject: Path = PYPROJECT, lock: Path = LOCK, *, extras: tuple[str, ...] = ()) -> list[str]:
    if not lock.is_file():
        return [f"no lock file at {lock.relative_to(REPO)} (run `make lock`)"]
    return lock_problems(pyproject.read_text(), lock.read_text(), extras=extras)


def read_lint_problems() -> list[str]:
    if not LINT_LOCK.is_file():
        return [f"no lock file at {LINT_LOCK.relative_to(REPO)} (run `make lock`)"]
    return input_lock_problems(LINT_INPUT.read_text(), LINT_LOCK.read_text(), PYPROJECT.read_text())
