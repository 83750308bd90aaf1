"""The attention stage: compute per-protein summaries, then write the clinician report.

``compute_protein`` runs the model (wild type, each variant, the substitution scan) and
returns arrays plus a score table; ``render_protein`` turns them into figures, the scan,
the agreement checks, ranked tables, B-factor PDBs, the 3D view, a printable PDF per
variant and one HTML page. Splitting the
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
from featvis.core.progress import Progress
from featvis.protein import figures
from featvis.protein.agreement import contact_precision, importance_vs_sensitivity, spearman, verdict
from featvis.protein.attention import MAP_NAMES, AttentionSummary, summarize
from featvis.protein.clinic import VariantSummary, variant_page
from featvis.protein.dms import model_scores, read_assay
from featvis.protein.models import ProteinLM
from featvis.protein.page import page, write_stylesheet
from featvis.protein.scan import (
    SCAN_METHODS,
    log_ratios,
    masked_scan_log_probs,
    percentile,
    scan_table,
    sensitivity,
    variant_score,
)
from featvis.protein.scoring import masked_log_probs, masked_marginal, wildtype_marginal
from featvis.protein.sequences import Variant
from featvis.protein.structure import beta_coordinates, match_residues, read_residues, write_bfactors
from featvis.protein.summary_table import DISPLAY_COLUMNS
from featvis.protein.table import ProteinEntry
from featvis.protein.viewer import VIEWER_HINT, ViewerMissingError, write_viewer

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
    scan: str = "masked"
    scan_budget: float = 3600  # seconds of estimated masked scan; checked at start (featvis.protein.checks)
    scan_batch: int = 8
    min_identity: float = 0.9

    def __post_init__(self) -> None:
        if self.scan not in SCAN_METHODS:
            raise ValueError(f"scan must be one of {SCAN_METHODS}, not {self.scan!r}")
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
    variants = list(entry.variants)
    importance = Progress(f"{entry.id} importance pass", 1 + len(variants), "sequences (wild type and variants)")
    wild = summarize(lm, entry.sequence, **tiling)
    importance.update()
    arrays = _pack("wildtype", wild)
    if params.scan == "masked":  # the masked scan also gives the variants' masked scores and the logos
        scan_progress = Progress(f"{entry.id} masked scan", len(entry.sequence), "positions")
        log_probs = masked_scan_log_probs(lm, entry.sequence, batch_size=params.scan_batch, progress=scan_progress,
                                          **tiling)  # fmt: skip
    else:
        log_probs = wild.log_probs
    scan = arrays["scan"] = log_ratios(log_probs, entry.sequence)
    if params.scan == "masked":
        masked = [variant_score(scan, v) for v in variants]
    else:
        masked = masked_marginal(lm, entry.sequence, variants)
    marginal = wildtype_marginal(wild.log_probs, entry.sequence, variants)
    rows = []
    for variant, mm, wm in zip(variants, masked, marginal, strict=True):
        mutant = summarize(lm, variant.apply(entry.sequence), **tiling)
        importance.update()
        arrays |= _pack(variant.label, mutant)
        start, end = logo_span(len(entry.sequence), variant, params.logo_window)
        logo = log_probs[start:end] if params.scan == "masked" else masked_log_probs(lm, entry.sequence,
                                                                                     list(range(start, end)))
        arrays[f"logo__{variant.label}"] = np.exp(logo)
        imp_w, imp_m = wild.importance(params.importance_from), mutant.importance(params.importance_from)
        rows.append({
            "protein": entry.id, "variant": variant.label, "notation": variant.notation,
            "position": variant.position, "wild_type": variant.wild_type, "mutant": variant.mutant,
            "effect": "synonymous" if variant.synonymous else "missense",
            "masked_marginal": round(mm, 4), "wildtype_marginal": round(wm, 4),
            "percentile": round(percentile(scan, entry.sequence, variant_score(scan, variant)), 1),
            "importance_wildtype": round(float(imp_w[variant.index]), 4),
            "importance_variant": round(float(imp_m[variant.index]), 4), "model": lm.name,
        })  # fmt: skip
    importance.finish()
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
    """Figures, tables, structure files, printable pages and ``index.html`` for one protein under ``outdir``."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    write_stylesheet(out)
    wild = _unpack(arrays, "wildtype")
    scan = np.asarray(arrays["scan"])
    per_layer = wild.importance_mean if params.importance_from == "mean" else wild.importance_max
    domains, variants = list(entry.domains), list(entry.variants)
    save_figure(
        figures.importance_overview(per_layer, domains, variants, f"{entry.id}: importance score of each residue"),
        out / "importance_wildtype.png",
    )
    structure = _load_structure(entry, params.min_identity)
    importance = wild.importance(params.importance_from)
    agreement = importance_vs_sensitivity(importance, sensitivity(scan, entry.sequence))
    sections = [
        ("scores", "Variant effect scores", _scores_section(scores)),
        ("importance", "Importance score along the protein",
         '<img src="importance_wildtype.png" alt="importance score of each residue">'),
        ("scan", "Every substitution: the substitution scan", _scan_section(entry, scan, params, out)),
        ("agreement", "Does importance agree with sensitivity?",
         _agreement_section(entry, wild, importance, scan, agreement, structure, params, out)),
    ]  # fmt: skip
    if entry.dms:
        sections.append(("assay", "Your assay against the model", _assay_section(entry, scan, out)))
    for variant in variants:
        mutant = _unpack(arrays, variant.label)
        body = _variant_section(entry, variant, wild, mutant, arrays, params, out, structure, scan)
        _printable(entry, variant, scores, params, model_name, training_note, agreement, structure, importance, out)
        sections.append((f"variant-{variant.label}", f"Variant {_named(variant)}", body))
    intro = (f"<p><b>Model:</b> {html.escape(model_name)}. {html.escape(training_note)} These are model outputs "
             "for research, not a clinical classification.</p>")  # fmt: skip
    write_text(out / "index.html", page(f"{entry.id}: variant report", intro, sections, model_name))
    return out / "index.html"


def _named(variant: Variant) -> str:
    name = variant.notation if variant.notation == variant.label else f"{variant.notation} ({variant.label})"
    return f"{name}, synonymous: no change of amino acid, score 0" if variant.synonymous else name


def _load_structure(entry: ProteinEntry, min_identity: float):
    if not entry.pdb:
        return None
    residues = read_residues(entry.pdb, entry.chain)
    return residues, match_residues(residues, entry.sequence, min_identity, source=f"structure {entry.pdb}")


def _table(frame: pd.DataFrame) -> str:
    return frame.rename(columns=DISPLAY_COLUMNS).to_html(index=False, border=0, classes="table")


def _scores_section(scores: pd.DataFrame) -> str:
    shown = scores.drop(columns=["protein", "model"]).copy()
    shown["printable page"] = [f'<a href="{v}.pdf">{v}.pdf</a>' for v in scores.variant]
    table = shown.rename(columns=DISPLAY_COLUMNS).to_html(index=False, border=0, classes="table", escape=False)
    return (
        "<p>The <b>variant effect score</b> compares how plausible the model finds the variant residue with the "
        "wild-type residue at that position: below 0 means less plausible. The <b>percentile</b> places it among "
        "all single substitutions of this protein (low: among those the model finds least plausible).</p>" + table
    )


def _scan_section(entry: ProteinEntry, scan: np.ndarray, params: AttentionParams, out: Path) -> str:
    write_text(out / "substitution_scan.tsv", scan_table(scan, entry.sequence).to_csv(sep="\t", index=False))
    save_figure(
        figures.scan_heatmap(scan, entry.sequence, list(entry.domains), list(entry.variants),
                             f"{entry.id}: every single substitution ({params.scan} scan)"),
        out / "substitution_scan.png",
    )  # fmt: skip
    how = ("each position hidden from the model in turn" if params.scan == "masked"
           else "one model run over the unchanged sequence (faster, less accurate than masked)")  # fmt: skip
    return (
        f"<p>The variant effect score of all 19 substitutions at each of the {len(entry.sequence)} positions, "
        f"from {how}. Each reported variant has a zoomed view in its own section.</p>"
        '<img src="substitution_scan.png" alt="substitution scan">'
        '<p><a href="substitution_scan.tsv">every score as TSV</a> (position, wild_type, mutant, score)</p>'
    )


def _agreement_section(entry, wild, importance, scan, agreement, structure, params, out: Path) -> str:
    sens = sensitivity(scan, entry.sequence)
    marks = {v.label: (float(importance[v.index]), float(sens[v.index])) for v in entry.variants}
    save_figure(
        figures.scatter(importance, sens, "importance score", "sensitivity (minus mean score of the 19 substitutions)",
                        f"{entry.id}: importance against sensitivity", agreement.sentence, marks),
        out / "agreement.png",
    )  # fmt: skip
    parts = [
        "<p>Importance comes from how the model weighs residues while reading; that is not always a faithful "
        "explanation. <b>Sensitivity</b> is what the model itself says matters: how implausible it finds changes "
        "at a position. If the two rank residues alike, the importance scores are more believable.</p>",
        f'<p class="verdict">{html.escape(agreement.sentence)}</p>',
        '<img src="agreement.png" alt="importance against sensitivity">',
    ]
    if structure is not None:
        parts.append(_contact_part(entry, wild, structure, params))
    return "\n".join(parts)


def _contact_part(entry, wild, structure, params) -> str:
    residues, alignment = structure
    name = "contacts" if wild.contacts is not None else "apc"
    check = contact_precision(getattr(wild, name), beta_coordinates(residues, alignment, len(entry.sequence)))
    if check is None:
        return "<p>The structure covers no residue pairs 24 or more positions apart: no contact check.</p>"
    return (
        f"<p><b>Check of the model on this protein's structure.</b> Of the {check.top} residue pairs at least "
        f"{check.separation} positions apart that the model's pair map ({html.escape(MAP_WORDS[name])}) ranks "
        f"highest, {100 * check.precision:.0f}% are contacts in the structure (C-beta within {check.cutoff:g} "
        f"angstroms; the structure has {check.contacts} such contacts among {check.pairs} pairs, so picking pairs "
        f"at random would score about {100 * check.contacts / check.pairs:.0f}%). This tests the model on this one "
        "protein; it says nothing about any variant.</p>"
    )


def _assay_section(entry: ProteinEntry, scan: np.ndarray, out: Path) -> str:
    assay = read_assay(entry.dms, entry.sequence)
    model = model_scores(assay, scan)
    rho = spearman(model, assay.DMS_score.to_numpy())
    multi = int(assay.mutant.str.contains(":").sum())
    sentence = (f"The model's scores and your assay {verdict(rho)} (Spearman {rho:+.2f} over {len(assay)} "
                "measured variants).")  # fmt: skip
    save_figure(
        figures.scatter(model, assay.DMS_score.to_numpy(), "variant effect score (model)", "DMS score (assay)",
                        f"{entry.id}: model against assay", sentence),
        out / "assay.png",
    )  # fmt: skip
    return (
        f"<p>From <code>{html.escape(Path(entry.dms).name)}</code> (ProteinGym layout). "
        + (f"{multi} multi-mutants are scored as the sum of their single substitutions. " if multi else "")
        + f'</p><p class="verdict">{html.escape(sentence)}</p><img src="assay.png" alt="model against assay">'
    )


def _printable(entry, variant, scores, params, model_name, training_note, agreement, structure, importance, out):
    row = scores[scores.variant == variant.label].iloc[0]
    score = float(row.masked_marginal if params.scan == "masked" else row.wildtype_marginal)
    snapshot = None
    if structure is not None:
        snapshot = out / f"{variant.label}_snapshot.png"
        ca = _ca_by_position(entry, structure)
        save_figure(figures.structure_snapshot(ca, importance, variant, f"{entry.id}: structure"), snapshot)
    summary = VariantSummary(entry.id, _named(variant), score, float(row.percentile), params.scan, model_name,
                             training_note, agreement.sentence)  # fmt: skip
    variant_page(summary, out / f"{variant.label}_zoom.png", out / f"{variant.label}.pdf", snapshot)


def _ca_by_position(entry: ProteinEntry, structure) -> np.ndarray:
    """(L, 3) C-alpha coordinates by sequence position; NaN where the structure has none."""
    residues, alignment = structure
    ca = np.full((len(entry.sequence), 3), np.nan)
    for res, j in zip(residues, alignment.mapping, strict=True):
        if j is not None and res.ca is not None:
            ca[j] = res.ca
    return ca


def _variant_section(entry, variant, wild, mutant, arrays, params, out, structure, scan) -> str:
    lab = variant.label
    imp_w, imp_m = wild.importance(params.importance_from), mutant.importance(params.importance_from)
    save_figure(
        figures.neighbourhood(entry.sequence, imp_w, imp_m, variant, params.zoom_window,
                              f"{entry.id} {lab}: importance scores near the variant"),
        out / f"{lab}_zoom.png",
    )  # fmt: skip
    save_figure(
        figures.scan_zoom(scan, entry.sequence, variant, params.zoom_window,
                          f"{entry.id} {lab}: every substitution near the variant"),
        out / f"{lab}_scan.png",
    )  # fmt: skip
    table = ranked_changes(entry, imp_w, imp_m, params.top_residues)
    write_text(out / f"{lab}_top_changes.tsv", table.to_csv(sep="\t", index=False))
    save_figure(
        figures.importance_change(imp_m - imp_w, list(entry.domains), variant, list(table.position - 1),
                                  f"{entry.id} {lab}: change in importance score"),
        out / f"{lab}_change.png",
    )  # fmt: skip
    save_figure(
        figures.pair_maps(getattr(wild, params.pair_map), getattr(mutant, params.pair_map), variant,
                          f"{entry.id} {lab}: residue-pair importance, wild type and variant",
                          MAP_WORDS[params.pair_map]),
        out / f"{lab}_pairs.png",
    )  # fmt: skip
    start, _ = logo_span(len(entry.sequence), variant, params.logo_window)
    probs = np.asarray(arrays[f"logo__{lab}"])
    window = np.arange(start, start + len(probs))
    important = set(window[np.argsort(-imp_w[window], kind="stable")[: params.logo_highlight]].tolist())
    save_figure(
        figures.sequence_logo(probs, start, entry.sequence, variant, important,
                              f"{entry.id} {lab}: residues the model expects around the variant"),
        out / f"{lab}_logo.png",
    )  # fmt: skip
    parts = [f'<p><a href="{lab}.pdf">printable page ({lab}.pdf)</a></p>']
    for name in ("zoom", "scan", "change"):
        parts.append(f'<img src="{lab}_{name}.png" alt="{lab} {name}">')
    parts.append("<h3>Residues whose importance score changes most</h3>")
    parts.append(_table(table))
    parts.append(f'<p><a href="{lab}_top_changes.tsv">table as TSV</a></p>')
    for name in ("pairs", "logo"):
        parts.append(f'<img src="{lab}_{name}.png" alt="{lab} {name}">')
    if structure is not None:
        parts.append(_structure_part(entry, variant, imp_w, imp_m, sensitivity(scan, entry.sequence), structure, out))
    return "\n".join(parts)


def _structure_part(entry, variant, imp_w, imp_m, sens, structure, out: Path) -> str:
    residues, alignment = structure
    lab = variant.label
    files = {"wildtype": imp_w, lab: imp_m, f"{lab}_difference": imp_m - imp_w}
    for name, values in files.items():
        write_bfactors(entry.pdb, out / f"structure_{name}.pdb", residues, alignment.mapping, values)
    tracks = {
        "importance score, wild type": (imp_w, False, "darker: the model relies more on the residue"),
        f"importance score with {lab}": (imp_m, False, f"darker: the model relies more on the residue with {lab}"),
        "change in importance score": (imp_m - imp_w, True, "red: more important with the variant; blue: less"),
        "sensitivity": (sens, False, "darker: the model finds most substitutions there implausible"),
    }
    try:
        write_viewer(
            out / f"{lab}_structure.html",
            pdb_text=(out / "structure_wildtype.pdb").read_text(),
            residues=residues,
            mapping=alignment.mapping,
            tracks=tracks,
            variant_index=variant.index,
            variant_label=lab,
            domains=list(entry.domains),
            title=f"{entry.id} {lab}: importance on the structure",
            reading="Cartoon coloured by the chosen score; the variant residue is shown as sticks.",
            alignment_note=alignment.describe(residues),
        )
        view = f'<a href="{lab}_structure.html">interactive 3D view (works offline)</a>.'
    except ViewerMissingError:  # the report never waits for the viewer: a still picture instead
        save_figure(figures.structure_snapshot(_ca_by_position(entry, structure), imp_w, variant,
                                               f"{entry.id} {lab}: importance score on the structure"),
                    out / f"{lab}_structure.png")  # fmt: skip
        view = (f'<img src="{lab}_structure.png" alt="{lab} structure coloured by importance score"></p>'
                f'<p class="note">{html.escape(VIEWER_HINT)}')  # fmt: skip
    links = " ".join(f'<a href="structure_{n}.pdb">{n}.pdb</a>' for n in files)
    return (
        f"<h3>Structure</h3><p>{view} "
        f"Alignment to the sequence: {html.escape(alignment.describe(residues))}.</p>"
        f"<p>Importance scores in the B-factor column, for PyMOL (<code>spectrum b</code>) or ChimeraX "
        f"(<code>color bfactor</code>): {links}</p>"
    )


def params_dict(params: AttentionParams) -> dict:
    return asdict(params)
