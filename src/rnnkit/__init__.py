"""rnnkit: recurrent neural networks on sequential data, built on PyTorch."""

__version__ = "0.1.0"
