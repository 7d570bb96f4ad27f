"""Errors of the forecasting package.

``mlops.forecasting`` runs inside the serving environment without the rest of ``mlops``, so it
cannot raise ``mlops.errors`` classes. It raises ``ForecastInputError`` (a ``ValueError``) for
input that is wrong - a CSV without a column, a gap, a date beyond the horizon - always with a
message that says what is wrong and where. Callers translate it: the CLI into ``UsageError``
(exit 2), the online scoring script into HTTP 400, the batch scoring script into a failed
mini-batch that names the file.
"""

from __future__ import annotations


class ForecastInputError(ValueError):
    """Input data or a request the forecaster cannot use; the message names the problem and where."""


class UntrustedModelError(ForecastInputError):
    """The model file is a pickle (e.g. an AutoML model) and loading pickles was not allowed."""
