"""The evidence package's page: one ``index.html`` an editor reads with no network.

Every piece of text that came from a report, a claim, an annotation or a scene is escaped
with :func:`html.escape`, so a title or a note holding markup or script shows as text; the
page itself holds no script.  Images are the PNG files beside it (relative links).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from satdelta.annotations import VERDICTS, Annotation
from satdelta.plugins.evidence.gather import ClaimEvidence, ReportEvidence

__all__ = ["AnnotationEntry", "render_page"]

_CSS = """
@page { size: A4; margin: 12mm; }
body { font-family: 'DejaVu Sans', Arial, sans-serif; margin: 1.5em; color: #111; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #999; margin-top: 1.5em; break-after: avoid; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.85em; width: 100%; }
#verdicts { table-layout: fixed; }
#verdicts th { font-size: 0.8em; padding: 0.25em 0.2em; }
#verdicts th:nth-child(1) { width: 3%; }
#verdicts th:nth-child(2) { width: 27%; }
#verdicts th:nth-child(3) { width: 12%; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.4em; text-align: left; vertical-align: top; }
td.n { text-align: right; }
.meta { color: #444; font-size: 0.9em; }
.evidence { break-inside: avoid; page-break-inside: avoid; margin: 1em 0; }
.chips { display: flex; gap: 0.4em; }
.chips img { width: 32%; height: auto; border: 1px solid #999; }
.problem { color: #a00000; }
code { font-size: 0.85em; word-break: break-all; }
"""


@dataclass(frozen=True)
class AnnotationEntry:
    """What the page shows of one accepted annotation.

    ``chips`` maps ``before``/``after``/``score`` to a PNG path relative to the page; empty
    when no chip could be cut, and ``problem`` then says why.
    """

    annotation: Annotation
    chips: Mapping[str, str]
    problem: str | None = None
    score_method: str | None = None


def _text(value: Any) -> str:
    return "–" if value is None or value == "" else escape(str(value))


def _head(evidence: ReportEvidence, generated: str, version: str) -> list[str]:
    r = evidence.report
    rows = [
        ("Outlet", _text(r.outlet)),
        ("Published", _text(r.published)),
        ("URL", _text(r.url)),
        ("Report id", _text(r.id)),
        ("Generated", f"{_text(generated)} by satdelta {_text(version)}"),
    ]
    return [
        f"<h1>{escape(r.title)}</h1>",
        f'<p class="meta">{_text(r.notes)}</p>' if r.notes else "",
        '<table class="report">',
        *(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows),
        "</table>",
    ]


def _verdict_table(claims: Sequence[ClaimEvidence]) -> list[str]:
    objects = any(c.objects is not None for c in claims)
    head = ["#", "Claim", "Place", *(v for v in VERDICTS), "Undecided", "Rejected"]
    if objects:
        head += ["Objects before", "Objects after"]
    out = [
        "<h2>Verdicts</h2>",
        '<p class="meta">Accepted annotations per claim, by what they say about it.</p>',
        '<table id="verdicts">',
        "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>",
    ]
    for c in claims:
        cells = [
            f"<td>{c.claim.id}</td>",
            f"<td>{_text(c.claim.text)}</td>",
            f"<td>{_text(c.claim.place)}</td>",
            *(f'<td class="n {v}">{c.verdicts[v]}</td>' for v in VERDICTS),
            f'<td class="n undecided">{c.undecided}</td>',
            f'<td class="n rejected">{c.rejected}</td>',
        ]
        if objects:
            o = c.objects
            cells += [
                f'<td class="n objects-before">{_text(o.before if o else None)}</td>',
                f'<td class="n objects-after">{_text(o.after if o else None)}</td>',
            ]
        out.append(f'<tr data-claim="{c.claim.id}">' + "".join(cells) + "</tr>")
    out.append("</table>")
    return out


def _entry(entry: AnnotationEntry) -> list[str]:
    a = entry.annotation
    conf = "–" if a.confidence is None else f"{a.confidence:.2f}"
    facts = (
        f"<b>{_text(a.label)}</b> · {_text(a.verdict)} · confidence {conf} · "
        f"{a.area_m2:,.1f} m² · {_text(a.origin)} · analyst {_text(a.analyst)}"
    )
    out = [
        f'<div class="evidence" id="a-{escape(a.id)}">',
        f"<p>{facts}<br><code>{escape(a.id)}</code> (revision {a.revision})</p>",
    ]
    if a.notes:
        out.append(f'<p class="notes">Notes: {_text(a.notes)}</p>')
    if entry.chips:
        out.append('<div class="chips">')
        out += [
            f'<img src="{escape(path)}" alt="{escape(kind)} chip of {escape(a.id)}">'
            for kind, path in entry.chips.items()
        ]
        out.append("</div>")
        if entry.score_method:
            out.append(f'<p class="meta">Change score: {_text(entry.score_method)}.</p>')
    if entry.problem:
        out.append(f'<p class="problem">No chips: {_text(entry.problem)}</p>')
    out.append("</div>")
    return out


def _scenes(scenes: Sequence[Mapping[str, Any]]) -> list[str]:
    out = [
        "<h2>Source scenes</h2>",
        '<table id="scenes"><tr><th>Scene</th><th>Acquired</th><th>Status</th>'
        "<th>sha256 or remote fingerprint</th><th>Source</th></tr>",
    ]
    for s in scenes:
        status = _text(s.get("status"))
        if s.get("message"):
            status = f'<span class="problem">{status}: {_text(s["message"])}</span>'
        print_id = s.get("sha256") or s.get("remote") or s.get("recorded_sha256")
        out.append(
            f'<tr class="scene {escape(str(s.get("status")))}"><td>{_text(s.get("scene_id"))}'
            f"</td><td>{_text(s.get('acquired'))}</td><td>{status}</td>"
            f"<td><code>{_text(print_id)}</code></td><td><code>{_text(s.get('source'))}</code>"
            "</td></tr>"
        )
    out.append("</table>")
    return out


def render_page(
    evidence: ReportEvidence,
    entries: Mapping[str, AnnotationEntry],
    scenes: Sequence[Mapping[str, Any]],
    *,
    generated: str,
    version: str,
) -> str:
    """The whole page as text.

    Parameters
    ----------
    entries : mapping
        Annotation id -> :class:`AnnotationEntry`, for every accepted annotation.
    scenes : sequence of mapping
        The manifest's scene records (``status`` ``ok``, ``changed`` or ``unavailable``).
    """
    body = [*_head(evidence, generated, version), *_verdict_table(evidence.claims)]
    for c in evidence.claims:
        body.append(f'<h2 id="claim-{c.claim.id}">Claim {c.claim.id}: {_text(c.claim.text)}</h2>')
        counts = ", ".join(f"{c.verdicts[v]} {v}" for v in VERDICTS)
        body.append(f'<p class="meta">Accepted annotations: {counts}.</p>')
        if not c.accepted:
            body.append("<p>No accepted annotation.</p>")
        for a in c.accepted:
            body += _entry(entries[a.id])
    body += _scenes(scenes)
    body.append(
        '<p class="meta">Files and their sha256: <code>manifest.json</code>; the accepted '
        "annotations with every property: <code>evidence.geojson</code>. Check the package "
        "with <code>satdelta evidence verify DIR</code>.</p>"
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(evidence.report.title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            *(line for line in body if line),
            "</body></html>",
            "",
        ]
    )
