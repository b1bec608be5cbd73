"""nncompress: lossless compression with a pretrained, integer-exact neural network.

Kept import-light on purpose: ``nncompress --help`` and ``--version`` must not pay for
numpy or torch.
"""

__version__ = "0.1.0"
