"""How errors are shown to users: one line."""


def first_line(err: BaseException) -> str:
    """The first line of an error's message (its type name when the message is empty): what a
    one-line error report quotes of a library's multi-line message."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
