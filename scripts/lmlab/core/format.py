"""Number formatting and figure style shared by every stage's tables, figures and the paper.

Stages write tables and figures next to their summaries, so these helpers live below the
stages (in core) rather than in the paper package that reads what the stages wrote.
"""


def fmt_num(x, digits=3):
    """A number for a table cell: '–' for missing, thousands separators for integers."""
    if x is None or x == "":
        return "–"
    if isinstance(x, str):
        try:
            x = float(x)
        except ValueError:
            return x
    if isinstance(x, bool):
        return str(x).lower()
    if float(x).is_integer() and abs(x) >= 1:
        return f"{int(x):,}"
    return f"{x:.{digits}f}"


def fmt_fixed(x, digits=3, missing=""):
    """Fixed-point with `digits` decimals, `missing` for None (TSV cells, model cards)."""
    return missing if x is None else f"{x:.{digits}f}"


def fmt_pct(x, digits=1):
    return "–" if x is None else f"{100 * float(x):.{digits}f}%"


def fmt_ci(d, digits=3, percent=False):
    """`{estimate, low, high, n}` -> '0.512 [0.401, 0.622], n = 60'."""
    if not d:
        return "–"
    if d.get("estimate") is None:
        return "not estimable" + (f", n = {d['n']}" if d.get("n") is not None else "")
    f = (lambda v: fmt_pct(v, 1)) if percent else (lambda v: fmt_num(v, digits))
    text = f"{f(d['estimate'])} [{f(d['low'])}, {f(d['high'])}]"
    if d.get("n") is not None:
        text += f", n = {d['n']}"
    return text


def apply_style(plt):
    """One style for every figure of the paper."""
    plt.rcParams.update(
        {
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "figure.dpi": 150,
            "savefig.bbox": "tight",
            "pdf.fonttype": 42,
        }
    )


def save_figure(fig, png_path, pdf_path=None):
    """Write a figure as PNG (and PDF) with fixed metadata, so equal plots give equal bytes
    (matplotlib would stamp the PDF with its creation date)."""
    from pathlib import Path

    for path in (png_path, pdf_path):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=150, metadata={"Software": None})
    if pdf_path:
        fig.savefig(pdf_path, metadata={"CreationDate": None, "Creator": None, "Producer": None})
