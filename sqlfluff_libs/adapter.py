"""Stand-in for dbt's `adapter` when sqlfluff renders with the jinja templater.

dispatch() resolves to the project's postgres__ or default__ macro, as dbt does on Postgres.
"""

from jinja2 import pass_context


@pass_context
def dispatch(context, name: str, macro_namespace: str | None = None):
    for prefix in ("postgres__", "default__"):
        macro = context.get(prefix + name)
        if macro is not None:
            return macro
    raise RuntimeError(f"no postgres__ or default__ implementation of {name}")
