"""The report's look, shared by the HTML report and the stage notebooks in JupyterLab: the page's
CSS, its table-sorting script and tables without index columns where a missing value reads "—".

Kept apart from report.py so that a stage notebook importing it does not depend on the report's code.
"""

from __future__ import annotations

import html

# How a missing value reads in every table (never NaN or None).
MISSING = "—"


PAGE_CSS = """
body, .jp-Notebook { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
.sst2bench-answer { border-left: 6px solid #e67e22; background: #fff7ef; padding: .8em 1.2em; margin: .6em 0 1em;
  font-size: 1.15em; line-height: 1.45; }
.sst2bench-cpu { color: #333; margin: .3em 0 .8em; }
table.sst2bench { border-collapse: collapse; font-size: 13px; margin: .4em 0 .2em; }
table.sst2bench th, table.sst2bench td { padding: 3px 6px; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
table.sst2bench th { white-space: normal; max-width: 7.5em; vertical-align: bottom; }
table.sst2bench th:first-child, table.sst2bench td:first-child { text-align: left; }
table.sst2bench td.text { text-align: left; white-space: normal; min-width: 24em; }
table.sortable th { cursor: pointer; background: #f4f4f4; position: sticky; top: 0; }
table.sortable th::after { content: " ⇅"; color: #aaa; font-size: 80%; }
table.sortable th[aria-sort="ascending"]::after { content: " ▲"; color: #333; }
table.sortable th[aria-sort="descending"]::after { content: " ▼"; color: #333; }
.sst2bench-notes { font-size: 12px; color: #555; margin: .2em 0 1em; }
details > summary { cursor: pointer; font-weight: 600; margin: .4em 0; }
"""

# Click a header to sort by that column (numbers by value, text alphabetically; "—" last).
SORT_JS = """
(function () {
  function announce() {  // tell assistive technology (and readers of the DOM) which headers sort
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable th:not([aria-sort])"), function (h) {
      h.setAttribute("aria-sort", "none");
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", announce); else announce();
  if (window.sst2benchSortable) return;
  window.sst2benchSortable = true;
  function value(cell) {
    var text = cell.textContent.trim();
    var number = parseFloat(text.replace(/^[+]/, "").replace(/[^0-9eE+\\-.].*$/, ""));
    return text === "\\u2014" || text === "" ? null : (Number.isFinite(number) ? number : text.toLowerCase());
  }
  document.addEventListener("click", function (event) {
    var th = event.target.closest && event.target.closest("table.sortable th");
    if (!th) return;
    var table = th.closest("table"), body = table.tBodies[0], column = th.cellIndex;
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.querySelectorAll("th"), function (h) { h.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a.cells[column]), y = value(b.cells[column]);
      if (x === null || y === null) return x === y ? 0 : (x === null ? 1 : -1);
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
})();
"""


def page_assets() -> str:
    """The report's style and its sorting script, as one HTML snippet (display it once per notebook)."""
    return f"<style>{PAGE_CSS}</style><script>{SORT_JS}</script>"


def use_report_style():
    """Make a notebook look like the report: the page's CSS and sorting, every DataFrame shown as the
    report's table, figures sized for the page.

    Call it at the top of a stage notebook; in JupyterLab its tables and figures then render as in
    the HTML report."""
    import matplotlib as mpl
    import pandas as pd
    from IPython import get_ipython
    from IPython.display import HTML, display

    mpl.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3})
    shell = get_ipython()
    if shell is not None:  # every DataFrame the notebook shows: the report's table (no index, sortable, "—")
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, html_table)
    display(HTML(page_assets()))


def html_table(df, text_columns: tuple[str, ...] = (), sortable: bool = True) -> str:
    """A DataFrame as a sortable HTML table without its index; a missing value reads "—"."""
    classes = ["sst2bench"] + (["sortable"] if sortable else [])
    header = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for values in df.itertuples(index=False):
        cells = []
        for column, value in zip(df.columns, values):
            shown = MISSING if value is None or (isinstance(value, float) and value != value) else str(value)
            css = ' class="text"' if column in text_columns else ""
            cells.append(f"<td{css}>{html.escape(shown)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{" ".join(classes)}"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def show(df, text_columns: tuple[str, ...] = (), notes: list[str] = ()):
    """The table (and its footnotes) as a displayable HTML object."""
    from IPython.display import HTML

    footer = "".join(f"<div>{html.escape(note)}</div>" for note in notes)
    return HTML(html_table(df, text_columns) + (f'<div class="sst2bench-notes">{footer}</div>' if footer else ""))
