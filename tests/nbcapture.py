"""A pytest plugin for ``make test``: keep what nbval executed.

nbval runs each notebook cell by cell in a kernel and keeps every cell's outputs
(``IPyNbCell.test_outputs``) but writes nothing. With ``-p tests.nbcapture --capture-notebooks DIR``
each notebook is written, with the outputs nbval saw, to ``DIR/NAME.ipynb`` once its cells have run,
so the book can be built from the same execution instead of running every notebook twice.
"""

from __future__ import annotations

from pathlib import Path

import nbformat


def pytest_addoption(parser):
    parser.addoption("--capture-notebooks", default=None, metavar="DIR",
                     help="write each nbval-executed notebook with its outputs to DIR")


_FAILED: set[str] = set()


def pytest_runtest_logreport(report):
    if report.failed:
        _FAILED.add(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    out = session.config.getoption("--capture-notebooks")
    if not out:
        return
    from nbval.plugin import IPyNbCell

    by_file: dict[str, list] = {}
    for item in session.items:
        if isinstance(item, IPyNbCell):
            by_file.setdefault(str(item.parent.fspath), []).append(item)
    for path, items in by_file.items():
        nb = nbformat.read(path, as_version=4)
        code_cells = [c for c in nb.cells if c.cell_type == "code"]
        dst = Path(out) / Path(path).name
        if any(item.nodeid in _FAILED for item in items):  # never let a failed notebook look complete
            dst.unlink(missing_ok=True)
            continue
        ran = 0
        for cell, item in zip(code_cells, items):
            outs = item.test_outputs
            cell.outputs = [nbformat.from_dict(dict(o)) for o in outs] if outs is not None else []
            for o in cell.outputs:
                if o.get("output_type") == "execute_result":
                    o.setdefault("execution_count", None)
                    o.setdefault("metadata", {})
                elif o.get("output_type") == "display_data":
                    o.setdefault("metadata", {})
            ran += outs is not None
        if ran < len(code_cells):
            dst.unlink(missing_ok=True)
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_suffix(".tmp")
        nbformat.write(nb, tmp)
        tmp.replace(dst)
