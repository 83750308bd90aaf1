"""The protein table (``config/variants.tsv``): one row per protein.

Columns (tab-separated): ``id``, ``sequence`` (letters or a FASTA path), ``variants`` (``R175H``,
``p.R175H`` or ``p.Arg175His``, separated by ';'), optional ``pdb`` (a PDB or mmCIF path, ``path`` or
``path:chain``), optional ``domains`` (``name:start-end`` separated by ';') and optional
``dms`` (a deep mutational scanning CSV in the ProteinGym layout, :mod:`featvis.protein.dms`).
Lines starting with '#' are comments; errors give the file's line number. Relative paths are
read from the working directory (the repository root).
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from featvis.protein.sequences import (
    Domain,
    SequenceError,
    Variant,
    is_inline_sequence,
    load_sequence,
    parse_domains,
    parse_variants,
)

REQUIRED = ("id", "sequence", "variants")


@dataclass(frozen=True)
class ProteinEntry:
    id: str
    sequence: str
    variants: tuple[Variant, ...]
    domains: tuple[Domain, ...]
    pdb: str | None
    chain: str | None
    fasta: str | None = None
    dms: str | None = None

    def files(self) -> list[str]:
        """Input files this row names (FASTA, structure, assay), for workflow dependencies."""
        return [f for f in (self.fasta, self.pdb, self.dms) if f]


def _split_pdb(value: str) -> tuple[str | None, str | None]:
    value = (value or "").strip()
    if not value:
        return None, None
    match = re.match(r"^(.*\.(?:pdb|ent|cif|mmcif)(?:\.gz)?)(?::(\w+))?$", value, flags=re.IGNORECASE)
    if not match:
        raise SequenceError(f"pdb column {value!r}: give a .pdb or .cif path, optionally with ':CHAIN'")
    return match.group(1), match.group(2)


def _data_lines(path: Path) -> list[tuple[int, str]]:
    """(file line number, text) of every line that is not blank or a comment."""
    return [(n, line) for n, line in enumerate(path.read_text().splitlines(), start=1)
            if line.strip() and not line.startswith("#")]  # fmt: skip


def _header(path: Path, number: int, line: str) -> list[str]:
    columns = [c.strip() for c in line.split("\t")]
    missing = [c for c in REQUIRED if c not in columns]
    if not missing:
        return columns
    hint = ""
    if "\t" not in line and ("," in line or ";" in line):
        sep = "comma" if "," in line else "semicolon"
        hint = (f"; it looks {sep}-separated: featvis reads tab-separated tables (save it as 'Text (Tab delimited)' "
                "or TSV)")  # fmt: skip
    raise SequenceError(
        f"{path} line {number}: the header lacks column(s) {missing}; columns are id, sequence, variants, pdb, "
        f"domains, dms, separated by tabs{hint}"
    )


def read_table(path: str | os.PathLike, base: str | os.PathLike = ".") -> list[ProteinEntry]:
    """Parse and check every row; errors name the file line (comments counted) and the problem."""
    path = Path(path)
    if not path.is_file():
        raise SequenceError(f"protein table not found: {path}")
    lines = _data_lines(path)
    if not lines:
        raise SequenceError(f"{path} has no header line (id, sequence, variants, ...)")
    columns = _header(path, *lines[0])
    entries, seen = [], set()
    for number, line in lines[1:]:
        cells = next(csv.reader([line], delimiter="\t"))
        row = dict(zip(columns, cells + [""] * (len(columns) - len(cells)), strict=False))
        ident = (row["id"] or "").strip()
        where = f"{path} line {number}"
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", ident) or ident in seen:
            raise SequenceError(f"{where}: id {ident!r} must be unique and use letters, digits, _ . -")
        seen.add(ident)
        try:
            sequence = load_sequence(row["sequence"] or "", base)
            variants = parse_variants(row["variants"] or "", sequence)
            domains = parse_domains(row.get("domains") or "", len(sequence))
            pdb, chain = _split_pdb(row.get("pdb") or "")
        except SequenceError as err:
            raise SequenceError(f"{where} ({ident}): {err}") from None
        fasta = None if is_inline_sequence(row["sequence"] or "", base) else (row["sequence"] or "").strip()
        dms = (row.get("dms") or "").strip() or None
        entries.append(ProteinEntry(ident, sequence, tuple(variants), tuple(domains), pdb, chain, fasta, dms))
    if not entries:
        raise SequenceError(f"{path} has no proteins")
    return entries


def entry_by_id(path: str | os.PathLike, ident: str) -> ProteinEntry:
    for entry in read_table(path):
        if entry.id == ident:
            return entry
    raise KeyError(f"protein {ident!r} is not in {path}")
