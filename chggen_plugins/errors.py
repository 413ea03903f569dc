"""The one exception (and the one warning) users see.

Every check on user input raises `ChggenError` with a single line that names the file, field or value
at fault and, where there is one, the fix. The CLI prints that line and exits 2 instead of a traceback.
"""


class ChggenError(ValueError):
    """Bad input or an unrecoverable condition, explained in one line."""


class ChggenWarning(UserWarning):
    """Input that is usable but probably not what was meant, explained in one line (the CLI prints it
    as one `chggen: warning:` line on stderr)."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none): what a
    library's multi-line error contributes to our one-line ChggenError."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
