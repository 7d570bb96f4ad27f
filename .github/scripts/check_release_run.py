"""Is RUN_ID a finished ``release.yml`` run on ``main`` of this repository? rollback.yml asks GitHub
before it trusts that run's ``release-record`` artifact.

A run id is just a number typed into a dispatch form: it may belong to another workflow (a
``ci.yml`` run can upload an artifact named ``release-record`` too), to a pull request's or a
branch's run, to a run still in progress (its own rollback job is the one to undo it), or be a
typo. Only a completed ``release.yml`` run on ``main`` of this repository, started by ``push`` or
``workflow_dispatch`` (its triggers), is trusted. Which deployments the rollback may then touch is
the ``mlops rollback`` guard's business (deployments tagged with the record's release id).

GitHub REST API, "Get a workflow run": ``GET /repos/{owner}/{repo}/actions/runs/{run_id}``
(https://docs.github.com/rest/actions/workflow-runs#get-a-workflow-run), with the job's
``GITHUB_TOKEN`` holding ``actions: read``. A run of another repository is not found under this
repository's URL (404). The run's ``path`` is the workflow file (``.github/workflows/release.yml``;
the API's schema example also shows ``OWNER/REPO/.github/workflows/ci.yml@main``, so a repository
prefix and an ``@ref`` suffix are accepted and checked). The API's base URL is the runner's
``GITHUB_API_URL`` (https://docs.github.com/actions/reference/variables-reference).

Standard library only: it runs before anything is installed. Exit 0 trusted (``head_sha`` and
``html_url`` of the run go to ``$GITHUB_OUTPUT``), 1 refused (the reason on stderr and in the step
summary), 2 bad input (not a run id, no token).
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request
from typing import Any

RELEASE_WORKFLOW = ".github/workflows/release.yml"
RELEASE_BRANCH = "main"
RELEASE_EVENTS = ("push", "workflow_dispatch")


def refusal(run: dict[str, Any], repository: str, *, workflow: str = RELEASE_WORKFLOW,
            branch: str = RELEASE_BRANCH, events: tuple[str, ...] = RELEASE_EVENTS) -> str | None:
    """Why the run is not to be trusted, or None. ``run`` is the API's workflow-run object."""
    run_id = run.get("id")
    repo_name = (run.get("repository") or {}).get("full_name")
    if str(repo_name).lower() != repository.lower():
        return f"run {run_id} belongs to {repo_name}, not {repository}"
    head_repo = (run.get("head_repository") or {}).get("full_name")
    if str(head_repo).lower() != repository.lower():
        return f"run {run_id} ran code from {head_repo} (a fork), not from {repository}"
    path = str(run.get("path") or "")
    path = path.split("@", 1)[0]
    prefix = f"{repository}/"
    if path.lower().startswith(prefix.lower()):
        path = path[len(prefix):]
    if path != workflow:
        return f"run {run_id} is a run of {run.get('path') or 'an unknown workflow'}, not of {workflow}"
    if run.get("head_branch") != branch:
        return f"run {run_id} ran on {run.get('head_branch')!r}, not on {branch!r}"
    if run.get("event") not in events:
        return f"run {run_id} was started by {run.get('event')!r}, not by {' or '.join(events)}"
    if run.get("status") != "completed":
        return (f"run {run_id} is {run.get('status')}: a release in progress is undone by its own rollback "
                "job (cancel the run, or reject its approval)")
    return None


def fetch_run(api_url: str, repository: str, run_id: str, token: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{api_url.rstrip('/')}/repos/{repository}/actions/runs/{run_id}",
        headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
                 "Authorization": f"Bearer {token}", "User-Agent": "mlops-rollback"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the runner's API URL
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, {}


def _summary(text: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")


def main() -> int:
    run_id = os.environ.get("RUN_ID", "").strip()
    repository = os.environ.get("GITHUB_REPOSITORY", "")
    token = os.environ.get("GH_TOKEN", "")
    api_url = os.environ.get("GITHUB_API_URL", "https://api.github.com")
    if not re.fullmatch(r"[1-9][0-9]{0,19}", run_id):
        print(f"release_run_id must be a workflow run id (the number in .../actions/runs/<id>), got {run_id!r}",
              file=sys.stderr)
        return 2
    if not token or not repository:
        print("GH_TOKEN and GITHUB_REPOSITORY are required", file=sys.stderr)
        return 2
    status, run = fetch_run(api_url, repository, run_id, token)
    if status == 404:
        reason = f"run {run_id} is not a workflow run of {repository}"
    elif status != 200:
        reason = f"GitHub answered {status} for run {run_id} (the job needs permissions: actions: read)"
    else:
        reason = refusal(run, repository)
    if reason is not None:
        print(f"refused: {reason}; nothing was rolled back", file=sys.stderr)
        _summary(f"### Rollback refused\n\n{reason}; nothing was rolled back.")
        return 1
    output = os.environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(f"head_sha={run.get('head_sha', '')}\nhtml_url={run.get('html_url', '')}\n")
    print(f"run {run_id}: release.yml on {RELEASE_BRANCH} ({run.get('event')}, {run.get('conclusion')}) - trusted",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
