"""``python -m nncompress``: the same command line as the ``nncompress`` script."""

from .cli import main

main(prog_name="nncompress")
