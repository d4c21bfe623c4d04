"""Makes the README's picture with the quickstart notebook's own code.

Runs the cells of 01-quickstart.ipynb tagged "readme-image" (the imports and the simulated
failover: deterministic, so the picture changes only when the engine or the drawing does) and
saves their `fig`:

    python notebooks/make_readme_image.py          # writes docs/images/failover-timeline.png
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any, Dict, Optional, Union

HERE = pathlib.Path(__file__).resolve().parent
NOTEBOOK = HERE / "01-quickstart.ipynb"
IMAGE = "docs/images/failover-timeline.png"  # relative to the repository's root


def main(out: Optional[Union[str, pathlib.Path]] = None) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import nbformat

    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    code = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "readme-image" in cell.metadata.get("tags", []):
            # IPython magics (%matplotlib inline) mean nothing here.
            code.append("\n".join(l for l in cell.source.splitlines() if not l.lstrip().startswith("%")))
    namespace: Dict[str, Any] = {"__name__": "readme_image"}
    exec(compile("\n\n".join(code), str(NOTEBOOK), "exec"), namespace)
    fig = namespace["fig"]
    target = pathlib.Path(out) if out is not None else HERE.parent / IMAGE
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=110)
    return fig


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
    print("wrote", sys.argv[1] if len(sys.argv) > 1 else IMAGE)
