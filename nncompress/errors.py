"""The one exception family of nncompress, importable without numpy."""


class NNCError(Exception):
    """Anything nncompress refuses or cannot do for a reason the user can act on: input
    that is not a well-formed archive (``FormatError``), a model that is missing or wrong
    (``ModelError``), a worker process that failed (``WorkerError``). The message is one
    line, the same the command line prints."""
