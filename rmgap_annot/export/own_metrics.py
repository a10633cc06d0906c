"""The card's and report.html's sections for the benchmark's own metrics and the rating questions.

Both read the report's ``benchmark_metrics`` and ``ratings`` keys through
``format_sections``'s rows, so the card, the page and report.html show the
same cells. Category names and question texts come from the benchmark file or
a researcher: escaped for Markdown and HTML alike.
"""

from __future__ import annotations

import html
import re
from typing import Any, Mapping

from rmgap_annot.format_sections import FORMAT_TITLES, agreement_rows, families, family_table, rating_rows


_MD_SPECIALS = re.compile(r"([\\`*_\[\]<>|#!])")


def _md(text: Any) -> str:
    """A table cell as literal Markdown: the characters that open a link, an image, code, emphasis or a cell escaped.

    Lighter than ``safe_markdown.escape`` so the card's numbers stay readable as plain text.
    """
    return _MD_SPECIALS.sub(r"\\\1", str(text)).replace("\n", " ")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _title(section: Mapping[str, Any]) -> str:
    return FORMAT_TITLES.get(section.get("format"), str(section.get("format")))


def card_own_metrics(report: Mapping[str, Any] | None, why_not: str | None) -> str:
    """The card's "<benchmark>'s own metrics" (another format only) and "Rating questions" sections."""
    lines: list[str] = []
    section = (report or {}).get("benchmark_metrics")
    if report is None:
        lines += ["", "## The benchmark's own metrics and rating questions", "", f"n/a: {why_not or 'no report'}"]
        return "\n".join(lines) + "\n"
    if section and section.get("format") != "rmgap":
        lines += ["", f"## {_title(section)}'s own metrics (people: plurality pick; value [95% interval])", ""]
        human = section.get("human") or {}
        if human.get("reason") and not human.get("metrics"):
            lines.append(f"n/a: {human['reason']}")
        if agreement := agreement_rows(section):
            head = list(agreement[0])
            lines += ["", "**Agreement on the pick (Krippendorff's alpha, nominal; 95% interval over item groups)**", "",
                      "| " + " | ".join(_md(h) for h in head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(_md(r[h]) for h in head) + " |" for r in agreement]
        for family, rows in families(section).items():
            cells = family_table(rows, indent="· ")
            head = list(cells[0])
            lines += ["", f"**{_md(family)}**", "", "| " + " | ".join(_md(h) for h in head) + " |",
                      "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(_md(c[h]) for h in head) + " |" for c in cells]
    ratings = report.get("ratings") or {}
    lines += ["", "## Rating questions (Krippendorff's alpha, ordinal, 95% interval)", ""]
    rows = rating_rows(ratings)
    if not rows:
        lines.append(f"n/a: {ratings.get('reason') or 'no rating question'}")
    else:
        lines += ["| question | about | alpha | answers | distribution |", "|---|---|---|---:|---|"]
        lines += [f"| {_md(r['question'])} | {r['about']} | {_md(r['alpha'])} | {r['answers']} | {_md(r['distribution'])} |"
                  for r in rows]
    return "\n".join(lines) + "\n"


def html_own_metrics(analytics: Mapping[str, Any]) -> list[str]:
    """report.html's tables: the benchmark's own metrics (another format) and the rating questions."""
    parts: list[str] = []
    section = analytics.get("benchmark_metrics")
    if isinstance(section, Mapping) and section.get("format") != "rmgap":
        parts.append(f"<h2>{_e(_title(section))}'s own metrics</h2>"
                     "<p class=\"note\">People: each item's plurality pick, scored by the benchmark's own rule; "
                     "value [95% interval over item groups].</p>")
        human = section.get("human") or {}
        if human.get("reason") and not human.get("metrics"):
            parts.append(f"<p>n/a ({_e(human['reason'])})</p>")
        if agreement := agreement_rows(section):
            head = list(agreement[0])
            parts.append("<h3>Agreement on the pick (Krippendorff's alpha, nominal, 95% CI)</h3><table><tr>"
                         + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{_e(r[h])}</td>" for h in head) + "</tr>" for r in agreement]
            parts.append("</table>")
        for family, rows in families(section).items():
            cells = family_table(rows, indent="\u2003")
            head = list(cells[0])
            parts.append(f"<h3>{_e(family)}</h3><table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{_e(c[h])}</td>" for h in head) + "</tr>" for c in cells]
            parts.append("</table>")
    ratings = analytics.get("ratings")
    if isinstance(ratings, Mapping):
        parts.append("<h2>Rating questions</h2>")
        rows = rating_rows(ratings)
        if not rows:
            parts.append(f"<p>n/a ({_e(ratings.get('reason') or 'no rating question')})</p>")
        else:
            parts.append("<table><tr><th>question</th><th>about</th><th>alpha (ordinal, 95% CI)</th><th>answers</th>"
                         "<th>distribution</th></tr>")
            parts += [f"<tr><td>{_e(r['question'])}</td><td>{_e(r['about'])}</td><td>{_e(r['alpha'])}</td>"
                      f"<td>{_e(r['answers'])}</td><td>{_e(r['distribution'])}</td></tr>" for r in rows]
            parts.append("</table>")
    return parts
