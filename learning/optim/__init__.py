"""Multiplicative and hybrid update rules for any PyTorch optimizer."""

__all__: list[str] = []
