"""mlops: release a time-series forecaster to Azure ML (or the local workspace) without breaking the live endpoint."""

__version__ = "0.1.0"
