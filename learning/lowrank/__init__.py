"""Low-rank training: LoRA adapters and ReLoRA restarts for any PyTorch model."""

__all__: list[str] = []
