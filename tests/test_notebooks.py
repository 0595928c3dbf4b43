"""The notebooks in notebooks/ (issue 11): committed with their outputs, and they run.

Each notebook is executed here from top to bottom with nbclient (the ``dev`` extra installs
it, with ipykernel), in the notebooks folder as a reader would run it; any cell error fails the
test. The committed file must be such a run: every code cell has output, none is an error or
a warning on stderr, and the cells were executed once each, in order. The fresh run must give
every cell output again (the texts differ: timings, temporary paths).

To refresh a notebook after editing it:
``jupyter execute --inplace notebooks/NAME.ipynb`` (nbclient, in the ``dev`` extra).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import needs_ruslit

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_there_is_a_notebook():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_holds_one_clean_run(path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    cells = _code_cells(nb)
    assert cells, path.name
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1)), \
        f"{path.name}: not one run from top to bottom; execute it again"
    for k, cell in enumerate(cells, 1):
        where = f"{path.name}, code cell {k}: {cell.source.splitlines()[0] if cell.source else ''!r}"
        assert cell.outputs, f"{where}: no output (every cell shows what it did)"
        for out in cell.outputs:
            assert out.output_type != "error", f"{where}: {out.get('ename')}: {out.get('evalue')}"
            assert not (out.output_type == "stream" and out.name == "stderr"), f"{where}: stderr: {out.text[:300]}"
        assert any(out.output_type != "stream" or out.text.strip() for out in cell.outputs), \
            f"{where}: prints only blank lines"


@pytest.mark.corpus
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path):
    """The whole notebook, as CI runs it (about a minute on two cores)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    needs_ruslit()
    nb = nbformat.read(path, as_version=4)
    committed = [len(c.outputs) for c in _code_cells(nb)]
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    for k, (cell, had) in enumerate(zip(_code_cells(nb), committed), 1):
        assert not had or cell.outputs, f"{path.name}, code cell {k}: output committed, none now"
