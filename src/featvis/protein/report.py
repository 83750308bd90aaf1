"""The attention stage: compute per-protein summaries, then write the clinician report.

``compute_protein`` runs the model (wild type, each variant, masked positions for the
logo and scores) and returns arrays plus a score table; ``render_protein`` turns them
into figures, ranked tables, B-factor PDBs, the 3D view and one HTML page. Splitting the
two lets figure options change without re-running the model.
"""

from __future__ import annotations

import html
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from featvis.core.figures import save_figure
from featvis.core.io import write_text
from featvis.protein import figures
from featvis.protein.attention import MAP_NAMES, AttentionSummary, summarize
from featvis.protein.models import ProteinLM
from featvis.protein.scoring import masked_log_probs, masked_marginal, wildtype_marginal
from featvis.protein.sequences import Variant
from featvis.protein.structure import match_residues, read_residues, write_bfactors
from featvis.protein.table import ProteinEntry
from featvis.protein.viewer import write_viewer

# Column headings shown to readers; the TSV files keep the short machine names.
DISPLAY_COLUMNS = {
    "masked_marginal": "variant effect score (masked)",
    "wildtype_marginal": "variant effect score (wild-type marginal)",
    "importance_wildtype": "importance score, wild type",
    "importance_variant": "importance score, variant",
    "change": "change in importance score",
    "wild_type": "wild-type residue",
    "mutant": "variant residue",
}

MAP_WORDS = {
    "mean": "averaged over model layers",
    "max": "strongest signal in each model layer, averaged over layers",
    "apc": "pair signal corrected for each residue's overall importance",
    "rollout": "accumulated through all model layers",
    "contacts": "the model's predicted probability that the two residues touch",
}


@dataclass(frozen=True)
class AttentionParams:
    importance_from: str = "mean"
    pair_map: str = "mean"
    tile_window: int | None = None
    tile_overlap: int = 256
    zoom_window: int = 10
    logo_window: int = 7
    logo_highlight: int = 3
    top_residues: int = 15

    def __post_init__(self) -> None:
        if self.importance_from not in ("mean", "max"):
            raise ValueError(f"importance_from must be 'mean' or 'max', not {self.importance_from!r}")
        if self.pair_map not in MAP_NAMES:
            raise ValueError(f"pair_map must be one of {MAP_NAMES}, not {self.pair_map!r}")


def _pack(prefix: str, summary: AttentionSummary) -> dict[str, np.ndarray]:
    return {f"{prefix}__{k}": v for k, v in summary.as_arrays().items()}


def _unpack(arrays, prefix: str) -> AttentionSummary:
    def get(name):
        key = f"{prefix}__{name}"
        return np.asarray(arrays[key]) if key in arrays else None

    return AttentionSummary(**{name: get(name) for name in AttentionSummary.__dataclass_fields__})


def logo_span(length: int, variant: Variant, window: int) -> tuple[int, int]:
    return max(0, variant.index - window), min(length, variant.index + window + 1)


def compute_protein(lm: ProteinLM, entry: ProteinEntry, params: AttentionParams) -> tuple[dict, pd.DataFrame]:
    """Arrays for the report and the variant effect score table of one protein."""
    if params.pair_map == "contacts" and lm.contact_weight is None:
        raise ValueError(
            f"pair_map 'contacts' needs a model with a contact predictor; {lm.name} has none "
            "(ESM-2 needs its -contact-regression.pt file beside the checkpoint)"
        )
    tiling = {"window": params.tile_window, "overlap": params.tile_overlap}
    wild = summarize(lm, entry.sequence, **tiling)
    arrays = _pack("wildtype", wild)
    variants = list(entry.variants)
    masked = masked_marginal(lm, entry.sequence, variants)
    marginal = wildtype_marginal(wild.log_probs, entry.sequence, variants)
    rows = []
    for variant, mm, wm in zip(variants, masked, marginal, strict=True):
        mutant = summarize(lm, variant.apply(entry.sequence), **tiling)
        arrays |= _pack(variant.label, mutant)
        start, end = logo_span(len(entry.sequence), variant, params.logo_window)
        arrays[f"logo__{variant.label}"] = np.exp(masked_log_probs(lm, entry.sequence, list(range(start, end))))
        imp_w, imp_m = wild.importance(params.importance_from), mutant.importance(params.importance_from)
        rows.append({
            "protein": entry.id, "variant": variant.label, "notation": variant.notation,
            "position": variant.position, "wild_type": variant.wild_type, "mutant": variant.mutant,
            "masked_marginal": round(mm, 4), "wildtype_marginal": round(wm, 4),
            "importance_wildtype": round(float(imp_w[variant.index]), 4),
            "importance_variant": round(float(imp_m[variant.index]), 4), "model": lm.name,
        })  # fmt: skip
    return arrays, pd.DataFrame(rows)


def ranked_changes(entry: ProteinEntry, wild: np.ndarray, mutant: np.ndarray, top: int) -> pd.DataFrame:
    """Residues whose importance score changes most (by absolute change), largest first."""
    delta = mutant - wild
    order = np.argsort(-np.abs(delta), kind="stable")[:top]
    domain_of = {}
    for d in entry.domains:
        for p in range(d.start, d.end + 1):
            domain_of[p] = d.name
    return pd.DataFrame({
        "rank": np.arange(1, len(order) + 1), "position": order + 1,
        "residue": [entry.sequence[i] for i in order], "domain": [domain_of.get(i + 1, "") for i in order],
        "importance_wildtype": wild[order].round(4), "importance_variant": mutant[order].round(4),
        "change": delta[order].round(4),
    })  # fmt: skip


def render_protein(
    entry: ProteinEntry,
    arrays,
    scores: pd.DataFrame,
    params: AttentionParams,
    outdir: str | os.PathLike,
    model_name: str,
    training_note: str,
) -> Path:
    """Figures, tables, structure files and ``index.html`` for one protein under ``outdir``."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    wild = _unpack(arrays, "wildtype")
    per_layer = wild.importance_mean if params.importance_from == "mean" else wild.importance_max
    domains = list(entry.domains)
    save_figure(
        figures.importance_overview(
            per_layer, domains, list(entry.variants), f"{entry.id}: importance score of each residue"
        ),
        out / "importance_wildtype.png",
    )
    sections = [_overview_section(entry, scores, model_name, training_note)]
    structure = _load_structure(entry)
    for variant in entry.variants:
        mutant = _unpack(arrays, variant.label)
        sections.append(_variant_section(entry, variant, wild, mutant, arrays, params, out, structure))
    page = _PAGE.format(title=html.escape(f"{entry.id}: variant report"), body="\n".join(sections))
    write_text(out / "index.html", page)
    return out / "index.html"


def _load_structure(entry: ProteinEntry):
    if not entry.pdb:
        return None
    residues = read_residues(entry.pdb, entry.chain)
    return residues, match_residues(residues, entry.sequence)


def _variant_section(entry, variant, wild, mutant, arrays, params, out, structure) -> str:
    lab = variant.label
    imp_w, imp_m = wild.importance(params.importance_from), mutant.importance(params.importance_from)
    save_figure(
        figures.neighbourhood(
            entry.sequence,
            imp_w,
            imp_m,
            variant,
            params.zoom_window,
            f"{entry.id} {lab}: importance scores near the variant",
        ),
        out / f"{lab}_zoom.png",
    )
    table = ranked_changes(entry, imp_w, imp_m, params.top_residues)
    write_text(out / f"{lab}_top_changes.tsv", table.to_csv(sep="\t", index=False))
    save_figure(
        figures.importance_change(
            imp_m - imp_w,
            list(entry.domains),
            variant,
            list(table.position - 1),
            f"{entry.id} {lab}: change in importance score",
        ),
        out / f"{lab}_change.png",
    )
    what = MAP_WORDS[params.pair_map]
    save_figure(
        figures.pair_maps(
            getattr(wild, params.pair_map),
            getattr(mutant, params.pair_map),
            variant,
            f"{entry.id} {lab}: residue-pair importance, wild type and variant",
            what,
        ),
        out / f"{lab}_pairs.png",
    )
    start, _ = logo_span(len(entry.sequence), variant, params.logo_window)
    probs = np.asarray(arrays[f"logo__{lab}"])
    window = np.arange(start, start + len(probs))
    important = set(window[np.argsort(-imp_w[window], kind="stable")[: params.logo_highlight]].tolist())
    save_figure(
        figures.sequence_logo(
            probs,
            start,
            entry.sequence,
            variant,
            important,
            f"{entry.id} {lab}: residues the model expects around the variant",
        ),
        out / f"{lab}_logo.png",
    )
    named = variant.notation if variant.notation == lab else f"{variant.notation} ({lab})"
    parts = [f"<h2>Variant {html.escape(named)}</h2>"]
    for name in ("zoom", "change"):
        parts.append(f'<img src="{lab}_{name}.png" alt="{lab} {name}">')
    parts.append("<h3>Residues whose importance score changes most</h3>")
    parts.append(table.rename(columns=DISPLAY_COLUMNS).to_html(index=False, border=0, classes="table"))
    parts.append(f'<p><a href="{lab}_top_changes.tsv">table as TSV</a></p>')
    for name in ("pairs", "logo"):
        parts.append(f'<img src="{lab}_{name}.png" alt="{lab} {name}">')
    if structure is not None:
        parts.append(_structure_part(entry, variant, imp_w, imp_m, structure, out))
    return "\n".join(parts)


def _structure_part(entry, variant, imp_w, imp_m, structure, out: Path) -> str:
    residues, mapping = structure
    lab = variant.label
    files = {"wildtype": imp_w, lab: imp_m, f"{lab}_difference": imp_m - imp_w}
    for name, values in files.items():
        write_bfactors(entry.pdb, out / f"structure_{name}.pdb", residues, mapping, values)
    tracks = {
        "wild type": (imp_w, False, "importance score, wild type"),
        f"variant {lab}": (imp_m, False, f"importance score with {lab}"),
        "difference": (imp_m - imp_w, True, "red: more important with the variant; blue: less"),
    }
    write_viewer(
        out / f"{lab}_structure.html",
        residues=residues,
        mapping=mapping,
        tracks=tracks,
        variant_index=variant.index,
        variant_label=lab,
        title=f"{entry.id} {lab}: importance on the structure",
        reading="Residues coloured by how much the model relies on them; the variant is ringed in green.",
    )
    links = " ".join(f'<a href="structure_{n}.pdb">{n}.pdb</a>' for n in files)
    return (
        f'<h3>Structure</h3><p><a href="{lab}_structure.html">interactive 3D view (works offline)</a>. '
        f"Importance scores in the B-factor column, for PyMOL (<code>spectrum b</code>) or ChimeraX "
        f"(<code>color bfactor</code>): {links}</p>"
    )


def _overview_section(entry, scores: pd.DataFrame, model_name: str, training_note: str) -> str:
    shown = scores.drop(columns=["protein", "model"]).rename(columns=DISPLAY_COLUMNS)
    return "\n".join([
        f"<p><b>Model:</b> {html.escape(model_name)}. {html.escape(training_note)}</p>",
        "<p>An <b>importance score</b> says how much the model relies on a residue when it reads the whole "
        "protein; 1.0 is an average residue. A <b>model layer</b> is one step of the model's reading. "
        "The <b>variant effect score</b> compares how plausible the model finds the variant residue with the "
        "wild-type residue at that position: below 0 means less plausible (log ratio; -2 is about 7 times "
        "less likely). Masked: the position is hidden from the model; wild-type marginal: it is not "
        "(cheaper). These are model outputs for research, not a clinical classification.</p>",
        "<h2>Variant effect scores</h2>",
        shown.to_html(index=False, border=0, classes="table"),
        "<h2>Importance score along the protein</h2>",
        '<img src="importance_wildtype.png" alt="importance overview">',
    ])  # fmt: skip


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body {{ font-family: sans-serif; max-width: 1400px; margin: 1em auto; color: #222; }}
img {{ max-width: 100%; display: block; margin: 0.8em 0; }}
table.table {{ border-collapse: collapse; font-size: 0.9em; }}
table.table td, table.table th {{ padding: 2px 8px; border-bottom: 1px solid #ddd; }}</style>
</head><body><h1>{title}</h1>
{body}
</body></html>
"""


def params_dict(params: AttentionParams) -> dict:
    return asdict(params)
