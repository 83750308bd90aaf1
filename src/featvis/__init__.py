"""featvis: a reproducible pipeline that shows what a neural network has learned."""

__version__ = "0.1.0"
