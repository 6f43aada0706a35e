"""Control: Gymnasium tracking environments, PID-inspired history encoders, SAC with histories."""

__all__: list[str] = []
