"""Stand-in for dbt's `exceptions` context when sqlfluff renders with the jinja templater."""


def raise_compiler_error(message: str) -> None:
    raise RuntimeError(message)


def warn(message: str) -> str:
    return ""
