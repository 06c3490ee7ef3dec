"""UsageError: a mistake in the command line or in the files it names."""

__all__ = ["UsageError"]


class UsageError(Exception):
    """Printed as "tinygrad-rnn <command>: error: <message>" without a traceback; exit status 2."""
