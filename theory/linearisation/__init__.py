"""Iterative linearised training and empirical neural tangent kernels."""

__all__: list[str] = []
