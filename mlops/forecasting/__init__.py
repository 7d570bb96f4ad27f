"""The TCN forecaster: data, model, training, and an AutoML-compatible forecasting API.

This package is shipped *inside* every deployment's code snapshot (``mlops.packaging``), next to
the scoring scripts, because the serving environment does not install ``mlops``. Therefore it
depends only on torch, numpy and pandas, imports its own modules relatively, and never imports
the rest of ``mlops`` (not even ``mlops.errors``: its errors are ``ForecastInputError``, which the
CLI translates). Importing the package itself is cheap; torch is imported by the modules that
need it.

Modules:

* ``synthetic``  - a seeded DAU-like daily series with the GitHub DAU columns
* ``data``       - loading/validating series, calendar features, the target scaling
* ``windows``    - slicing a series into (context window, horizon) samples, batched
* ``model``      - the temporal convolutional network (torch.nn.Module)
* ``train_config`` - ``TrainConfig`` (what a training is asked to do; imports no torch)
* ``splits``     - a training's cuts by time (fit/validation/holdout) and the fit part's samples
* ``fit``        - the training loop: the ensemble, early-stopped on the validation tail
* ``evaluation`` - the holdout against the seasonal-naive baseline, the residual table, ``metrics.json``
* ``training``   - ``train_model``: validate, fit, evaluate, calibrate, write ``model.pt`` + ``metrics.json``
* ``artifact``   - ``model.pt`` as a plain dict that ``torch.load(weights_only=True)`` loads
* ``forecaster`` - ``TCNForecaster`` (``forecast``/``rolling_forecast``/quantiles)
* ``loading``    - ``load_forecaster`` (``model.pt`` or a trusted AutoML pickle), ``quantile_forecast``
* ``calibration``, ``error_level``, ``intervals`` - the quantiles' conformal calibration, scaled by the
  model's recent error level
* ``metrics``    - MAPE/RMSE/MAE and the weekly seasonal-naive baseline on the same pairs
* ``payload``    - parsing/validating the online scoring payload (AutoML's format)
* ``errors``     - ``ForecastInputError`` (bad input, with what and where) and ``UntrustedModelError``
"""
