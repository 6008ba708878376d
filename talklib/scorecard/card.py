"""The reproduction scorecard: every re-run paper table of a run (or several), the paper's rows beside ours,
and a verdict for each claim the paper makes from the table.

Our rows and verdicts are what notebooks 05-09 wrote to ``RUN/metrics/NN_name.json``; nothing is re-measured
here (the side-by-side benchmark is ``talklib.scorecard.benchmark``). A verdict is one of

- ``holds`` / ``does not hold here``: the notebook measured the claim on this run;
- ``not testable here``: with the reason (``talklib.scorecard.papers.Table.untestable``);
- ``not run``: the notebook that re-runs the table did not finish in this run.

Notebooks spell their verdict keys two ways (``claim/NAME`` in 05-07, ``tableN/verdict/NAME`` in 08-09):
``Table.verdicts`` names the prefixes, so both are read the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from talklib.errors import UserError
from talklib.outputs import atomic_write_text, read_metrics
from talklib.scorecard.papers import PAPER_FILES, PAPERS, TABLES, Table

HOLDS, FAILS, UNTESTABLE, NOT_RUN = "holds", "does not hold here", "not testable here", "not run"


@dataclass
class Verdict:
    claim: str
    verdict: str
    why: str = ""
    split: str = ""           # e.g. testA / val where a notebook tests a claim on two splits


def _ours(t: Table, metrics: dict) -> dict[str, dict[str, float | None]]:
    """Our rows of table ``t`` from a notebook's flat metrics: {row: {metric: value}}."""
    wanted = {c.ours for c in t.columns if c.ours}
    rows: dict[str, dict] = {}
    for key, value in metrics.items():
        if not key.startswith(t.prefix) or isinstance(value, bool):
            continue
        rest = key[len(t.prefix):]
        if "/" not in rest:
            continue
        if t.layout == "metric/row":
            metric, row = rest.split("/", 1)
        else:
            row, metric = rest.rsplit("/", 1)
        if metric in wanted and row != "verdict" and not row.startswith("verdict/"):
            rows.setdefault(row, {})[metric] = value
    truth = {m: metrics[k] for m, k in t.truth.items() if k in metrics}
    if truth:
        rows.setdefault("ground truth", {}).update(truth)
    return rows


def _find(rows: dict, name: str) -> str | None:
    """Our row standing for the paper's ``name``: the same name, or the one it starts (step counts vary)."""
    if name in rows:
        return name
    hits = [r for r in rows if r.startswith(name)]
    return hits[0] if len(hits) == 1 else None


def _verdicts(t: Table, metrics: dict) -> list[Verdict]:
    out = []
    for i, prefix in enumerate(t.verdicts):
        split = t.splits[i] if i < len(t.splits) else ""
        for key, value in metrics.items():
            if not key.startswith(prefix) or not (value is None or isinstance(value, bool)):
                continue
            claim = key[len(prefix):]
            if t.claim_filter and not claim.startswith(t.claim_filter):
                continue
            claim = claim[len(t.claim_filter):].strip() if t.claim_filter else claim
            if value is None:     # the notebook could not decide it (a metric missing: no face found, row not run)
                out.append(Verdict(claim, UNTESTABLE, "a metric it compares is missing in this run (e.g. no face "
                                   "found in a row's videos, or the row not trained)", split=split))
            else:
                out.append(Verdict(claim, HOLDS if value else FAILS, split=split))
    out += [Verdict(c, UNTESTABLE, why) for c, why in t.untestable]
    return out


def table_card(t: Table, run_metrics: dict[str, dict]) -> dict:
    """One table's card: the paper's rows, ours, the columns and the verdicts (JSON-ready)."""
    nb = run_metrics.get(t.notebook)
    card = {"key": t.key, "paper": t.paper, "title": t.title, "notebook": t.notebook, "note": t.note,
            "columns": [{"paper": c.paper, "ours": c.ours, "ours_name": c.ours_name or c.ours, "up": c.up}
                        for c in t.columns],
            "paper_rows": {r: (list(v) + [None] * len(t.columns))[:len(t.columns)] for r, v in t.rows.items()}}
    if nb is None:
        card.update(ours={}, matched={}, verdicts=[Verdict(f"every claim of {t.title.split(':')[0]}", NOT_RUN,
                                                           f"notebook {t.notebook} did not finish in this run").__dict__])
        return card
    ours = _ours(t, nb["metrics"])
    card["ours"] = ours
    card["matched"] = {r: _find(ours, t.match.get(r, r)) for r in t.rows}
    card["verdicts"] = [v.__dict__ for v in _verdicts(t, nb["metrics"])]
    return card


def scorecard(run_dirs: list[str | Path]) -> dict:
    """The scorecard of one or more runs (e.g. the small and the full preset): {run: {table key: card}} plus
    a per-paper tally of verdicts. A folder with no ``metrics/`` is refused with one line."""
    runs = {}
    for d in run_dirs:
        d = Path(d)
        if not (d / "metrics").is_dir():
            raise UserError(f"{d} has no metrics/ folder: give a run folder that python -m talklib reproduce wrote")
        m = read_metrics(d)
        meta = json.loads((d / "run.json").read_text()) if (d / "run.json").is_file() else {}
        runs[str(d)] = {"preset": meta.get("preset") or _preset_of(m), "tables": {t.key: table_card(t, m) for t in TABLES}}
    tally = {}
    for p in PAPERS:
        counts = {HOLDS: 0, FAILS: 0, UNTESTABLE: 0, NOT_RUN: 0}
        for r in runs.values():
            for c in r["tables"].values():
                if c["paper"] == p:
                    for v in c["verdicts"]:
                        if not v["claim"].startswith("(ours)"):      # talklib's own checks are not the paper's
                            counts[v["verdict"]] += 1
        tally[p] = counts
    return {"runs": runs, "tally": tally, "papers": {p: PAPER_FILES[p] for p in PAPERS}}


def _preset_of(metrics: dict) -> str | None:
    for m in metrics.values():
        if isinstance(m, dict) and m.get("preset"):
            return m["preset"]
    return None


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def table_markdown(card: dict) -> str:
    """One table's card as markdown: the paper's rows, then ours, then the verdicts."""
    cols = card["columns"]
    head = "| row | " + " | ".join(f"paper {c['paper']}" for c in cols) + " | " + \
        " | ".join(f"ours {c['ours_name'] or '—'}" + (" ↑" if c["up"] else " ↓") for c in cols) + " |"
    lines = [f"**{card['paper']} — {card['title']}** (re-run in notebook {card['notebook']})", "", head,
             "|" + "---|" * (1 + 2 * len(cols))]
    shown = set()
    for r, vals in card["paper_rows"].items():
        mine = card.get("matched", {}).get(r)
        shown.add(mine)
        o = card.get("ours", {}).get(mine, {}) if mine else {}
        name = r if not mine or mine == r else f"{r} ↔ {mine}"
        lines.append(f"| {name} | " + " | ".join(_fmt(v) for v in vals) + " | " +
                     " | ".join(_fmt(o.get(c["ours"])) if c["ours"] else "—" for c in cols) + " |")
    for r, o in card.get("ours", {}).items():
        if r not in shown:
            lines.append(f"| {r} (ours only) | " + " | ".join("—" for _ in cols) + " | " +
                         " | ".join(_fmt(o.get(c["ours"])) if c["ours"] else "—" for c in cols) + " |")
    if card.get("note"):
        lines += ["", f"_{card['note']}_"]
    lines += ["", "| claim | verdict |", "|---|---|"]
    for v in card["verdicts"]:
        where = f" ({v['split']})" if v["split"] else ""
        why = f": {v['why']}" if v["why"] else ""
        lines.append(f"| {v['claim']}{where} | {v['verdict']}{why} |")
    return "\n".join(lines)


def markdown(card: dict, benchmark: dict | None = None) -> str:
    """The whole scorecard as one markdown page (the tally, the side-by-side benchmark, then every table)."""
    out = ["# talklib reproduction scorecard", ""]
    out += ["Claims of the four papers, re-run on talklib's ground-truth synthetic speaker. Values are not "
            "comparable with the papers' (other speakers, stand-in metrics); orderings and verdicts are.", ""]
    out += ["| paper | holds | does not hold here | not testable here | not run |", "|---|---|---|---|---|"]
    for p, c in card["tally"].items():
        out.append(f"| {p} | {c[HOLDS]} | {c[FAILS]} | {c[UNTESTABLE]} | {c[NOT_RUN]} |")
    if benchmark:
        from talklib.scorecard.benchmark import benchmark_markdown

        out += ["", benchmark_markdown(benchmark)]
    for run, r in card["runs"].items():
        out += ["", f"## Run `{run}` (preset {r['preset']})"]
        for p in PAPERS:
            for c in r["tables"].values():
                if c["paper"] == p:
                    out += ["", table_markdown(c)]
    return "\n".join(out) + "\n"


def write(run_dir: str | Path, card: dict, benchmark: dict | None = None) -> tuple[Path, Path]:
    """``RUN/scorecard.md`` and ``RUN/scorecard.json``, each written whole or not at all."""
    run_dir = Path(run_dir)
    md = atomic_write_text(run_dir / "scorecard.md", markdown(card, benchmark))
    js = atomic_write_text(run_dir / "scorecard.json",
                           json.dumps({**card, "benchmark": benchmark}, indent=1, default=str) + "\n")
    return md, js
