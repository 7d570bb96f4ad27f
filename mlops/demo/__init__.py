"""`mlops demo`: two models trained on the seeded synthetic series, released locally one after the
other (``run.py``), and the sample data they are trained on (``sample_data.py``). Not part of the
release: the release never imports this package."""
