"""Work in progress (replaced by its author)."""
