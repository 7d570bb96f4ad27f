"""The rehearsal's expression evaluator follows GitHub's documented semantics (table-tested)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.workflows.expressions import Context, ExpressionError, condition, evaluate, interpolate

CTX = Context(
    {
        "inputs": {"model_source": "", "refresh_batch": False, "profile": "fast"},
        "vars": {"MLOPS_MODEL": "azureml:tcn:3"},
        "needs": {
            "prepare": {"result": "success", "outputs": {"model_version": "3"}},
            "gate": {"result": "failure", "outputs": {}},
        },
        "github": {"event_name": "push"},
        "env": {"X": "1"},
    },
    status={"success": lambda: False, "failure": lambda: True, "always": lambda: True,
            "cancelled": lambda: False},
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("inputs.model_source || vars.MLOPS_MODEL", "azureml:tcn:3"),
        ("inputs.profile || vars.MLOPS_MODEL", "fast"),
        ("needs.prepare.outputs.model_version", "3"),
        ("needs['prepare'].outputs['model_version']", "3"),
        ("needs.missing.outputs.x", None),
        ("needs.gate.result == 'FAILURE'", True),  # string comparison ignores case
        ("github.event_name != 'workflow_dispatch' || inputs.refresh_batch", True),
        ("inputs.refresh_batch && 'yes'", False),  # && returns the falsy operand
        ("!inputs.refresh_batch", True),
        ("env.X == 1", True),  # numbers and strings compare loosely
        ("'3' < 10", True),
        ("contains(needs.*.result, 'failure')", True),
        ("contains('Hello', 'ell')", True),
        ("startsWith('azureml:tcn', 'AZUREML')", True),
        ("format('{0}-{1}', 'release', 'tcn-dau')", "release-tcn-dau"),
        ("fromJSON('{\"a\": [1, 2]}').a[1]", 2),
        ("failure() && needs.prepare.result == 'success'", True),
        ("(failure() || cancelled()) && needs.gate.result == 'success'", False),
        ("null == 0", True),
        ("'it''s'", "it's"),
    ],
)
def test_evaluate(expression: str, expected: Any) -> None:
    assert evaluate(expression, CTX) == expected


def test_interpolate_keeps_the_type_of_a_whole_expression_and_renders_text_around() -> None:
    assert interpolate("${{ inputs.refresh_batch }}", CTX) is False
    assert interpolate("v${{ needs.prepare.outputs.model_version }}-${{ inputs.refresh_batch }}", CTX) == "v3-false"
    assert interpolate("plain", CTX) == "plain"


def test_condition_adds_an_implicit_success() -> None:
    # the job's ancestors failed (success() is False): a condition without a status function is false
    assert condition("github.event_name == 'push'", CTX) is False
    assert condition(None, CTX) is False
    assert condition("${{ failure() }}", CTX) is True
    assert condition("always() && inputs.profile == 'fast'", CTX) is True


@pytest.mark.parametrize("expression", ["hashFiles('x')", "a ==", "'unterminated", "a.b)"])
def test_unknown_functions_and_syntax_errors_fail_loudly(expression: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate(expression, CTX)
