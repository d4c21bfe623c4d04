"""The options of ``quorate node``: moved to `quorate.cli.options`; this name stays for imports."""

from __future__ import annotations

from .cli.options import (  # noqa: F401
    NODE_OPTIONS,
    NodeHelpFormatter,
    NodeOption,
    add_node_options,
    constructor_parameters,
    name_the_option,
    node_arguments,
)
from .cli.options import __all__ as __all__  # noqa: F401
