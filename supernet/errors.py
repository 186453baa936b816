"""How errors are shown to users: one line."""


def first_line(err: BaseException) -> str:
    """The first line of an error's message (its type name when the message is empty): what a
    one-line error report quotes of a library's multi-line message."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def yaml_error(err: BaseException, source: object = None) -> str:
    """A YAML parser's error (several lines, with a caret drawing) as one line: the file
    (``source``, else the name the parser knows), line and column (counted from 1) and the problem."""
    mark, problem = getattr(err, "problem_mark", None), getattr(err, "problem", None)
    if mark is None or not problem:
        return first_line(err)
    context = getattr(err, "context", None)
    where = f"{source if source is not None else mark.name}, line {mark.line + 1}, column {mark.column + 1}"
    return f"{where}: {problem}" + (f" ({context})" if context else "")
