"""Bayes-optimal teacher-student learning: GLM state evolution, GAMP, Pyro posteriors."""

__all__: list[str] = []
