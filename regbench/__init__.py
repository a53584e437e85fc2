"""regbench: train and compare the classic neural-network regularization studies."""

__version__ = "0.1.0"
