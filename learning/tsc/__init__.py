"""Deep time-series classification: the TSC review's classifiers, data readers, estimator."""

__all__: list[str] = []
