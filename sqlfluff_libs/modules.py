"""Stand-in for dbt's `modules` context when sqlfluff renders with the jinja templater."""

import datetime  # noqa: F401
import itertools  # noqa: F401
import re  # noqa: F401
