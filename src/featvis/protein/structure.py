"""Structures: read one chain of a PDB or mmCIF file (AlphaFold models included) with gemmi,
align its residues to the sequence, write scores as B-factors.

The chain's residues are aligned to the sequence globally (match +2, mismatch -1, gap -2),
so residues the structure lacks (unresolved loops) or extra ones (tags) are fine. The
alignment is reported (identity, aligned range, differences); below ``min_identity`` the
structure is rejected with those numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import gemmi
import numpy as np

from featvis.core.io import write_text
from featvis.protein.sequences import ONE_TO_THREE, THREE_TO_ONE

_UPPER_THREE = {three.upper(): one for three, one in THREE_TO_ONE.items()} | {"MSE": "M"}
STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif", ".pdb.gz", ".ent.gz", ".cif.gz", ".mmcif.gz")


class StructureError(ValueError):
    """A structure file that cannot be used with the given sequence."""


@dataclass(frozen=True)
class Residue:
    chain: str
    number: int
    icode: str
    name: str  # three-letter, as in the file
    ca: tuple[float, float, float] | None
    cb: tuple[float, float, float] | None = None  # C-beta; C-alpha for glycine and C-alpha-only models

    @property
    def letter(self) -> str:
        return _UPPER_THREE.get(self.name, "X")

    @property
    def label(self) -> str:
        return f"{self.chain}:{self.name}{self.number}{self.icode.strip()}"


def _read(path: Path) -> gemmi.Structure:
    if not path.is_file():
        raise StructureError(f"structure file not found: {path}")
    try:
        structure = gemmi.read_structure(str(path))
    except (RuntimeError, ValueError) as err:
        try:  # legacy PDB files keep line numbers in columns 73-80, where element and charge now live
            structure = gemmi.read_pdb(str(path), max_line_length=72)
        except (RuntimeError, ValueError):
            raise StructureError(f"{path} is not a readable PDB or mmCIF file: {err}") from None
    structure.setup_entities()
    return structure


def _xyz(residue: gemmi.Residue, name: str) -> tuple[float, float, float] | None:
    atom = residue.find_atom(name, "*")
    return None if atom is None else (round(atom.pos.x, 3), round(atom.pos.y, 3), round(atom.pos.z, 3))


def read_residues(path: str | os.PathLike, chain: str | None = None) -> list[Residue]:
    """Amino-acid residues of one chain (the first with any when ``chain`` is None), first model only."""
    path = Path(path)
    model = _read(path)[0]
    names = [c.name for c in model]
    if chain is not None and chain not in names:
        raise StructureError(f"{path} has no chain {chain!r}; its chains are {', '.join(repr(n) for n in names)}")
    chosen = [model[chain]] if chain is not None else list(model)
    for candidate in chosen:
        residues = [
            Residue(candidate.name, r.seqid.num, r.seqid.icode.strip(), r.name, _xyz(r, "CA"),
                    _xyz(r, "CB") or _xyz(r, "CA"))
            for r in candidate
            if r.name.upper() in _UPPER_THREE
        ]  # fmt: skip
        if residues:
            return residues
    raise StructureError(f"{path} has no amino-acid residues" + (f" in chain {chain!r}" if chain else ""))


def align(a: str, b: str, match: int = 2, mismatch: int = -1, gap: int = -2) -> list[tuple[int | None, int | None]]:
    """Needleman-Wunsch global alignment; pairs of 0-based indices, None for a gap."""
    n, m = len(a), len(b)
    arr_b = np.frombuffer(b.encode(), dtype=np.uint8)
    score = np.zeros((n + 1, m + 1), dtype=np.int64)
    score[0] = gap * np.arange(m + 1)
    score[:, 0] = gap * np.arange(n + 1)
    cols = np.arange(m + 1)
    for i in range(1, n + 1):
        sub = np.where(arr_b == ord(a[i - 1]), match, mismatch)
        best = np.empty(m + 1, dtype=np.int64)
        best[0] = score[i, 0]
        best[1:] = np.maximum(score[i - 1, :-1] + sub, score[i - 1, 1:] + gap)
        # Horizontal gaps with a linear penalty: a running maximum over earlier columns.
        score[i] = np.maximum.accumulate(best - gap * cols) + gap * cols
    pairs: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and score[i, j] == score[i - 1, j - 1] + (match if a[i - 1] == b[j - 1] else mismatch):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i > 0 and score[i, j] == score[i - 1, j] + gap:
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    return pairs[::-1]


@dataclass(frozen=True)
class Alignment:
    """Structure residues placed on the sequence."""

    mapping: list[int | None]  # per structure residue: 0-based sequence index, or None
    identity: float  # identical pairs / structure residues
    first: int  # aligned range in the sequence, 1-based inclusive
    last: int
    differences: list[str]  # readable mismatches and unplaced residues

    def describe(self, residues: list[Residue]) -> str:
        placed = sum(j is not None for j in self.mapping)
        text = (
            f"{placed} of {len(residues)} structure residues ({residues[0].label} to {residues[-1].label}) "
            f"placed on sequence positions {self.first}-{self.last}, identity {100 * self.identity:.1f}%"
        )
        if self.differences:
            shown = "; ".join(self.differences[:5]) + (f"; and {len(self.differences) - 5} more"
                                                       if len(self.differences) > 5 else "")
            text += f"; differences: {shown}"
        return text


def align_residues(residues: list[Residue], sequence: str) -> Alignment:
    """Align the structure's residues to ``sequence`` and report how well they agree."""
    pairs = align("".join(r.letter for r in residues), sequence)
    mapping: list[int | None] = [None] * len(residues)
    differences = []
    for i, j in pairs:
        if i is None:
            continue
        res = residues[i]
        if j is None:
            differences.append(f"{res.label} has no counterpart in the sequence")
            continue
        mapping[i] = j
        if res.letter != sequence[j]:
            expected = ONE_TO_THREE.get(sequence[j], sequence[j]).upper()
            differences.append(f"{res.label} vs sequence position {j + 1} {expected} ({sequence[j]})")
    same = sum(j is not None and residues[i].letter == sequence[j] for i, j in enumerate(mapping))
    placed = [j for j in mapping if j is not None]
    first, last = (min(placed) + 1, max(placed) + 1) if placed else (0, 0)
    return Alignment(mapping, same / len(residues), first, last, differences)


def match_residues(
    residues: list[Residue], sequence: str, min_identity: float = 1.0, source: str = "the structure"
) -> Alignment:
    """The alignment of ``residues`` to ``sequence``; raise when identity is below ``min_identity``."""
    alignment = align_residues(residues, sequence)
    if alignment.identity + 1e-9 < min_identity:
        raise StructureError(
            f"{source} does not match the sequence: {alignment.describe(residues)}. Needed: identity of at least "
            f"{100 * min_identity:.0f}% (attention.min_identity); check the chain (path:CHAIN) and the sequence"
        )
    return alignment


def beta_coordinates(residues: list[Residue], alignment: Alignment, length: int) -> np.ndarray:
    """(length, 3) C-beta coordinates by sequence position; NaN where the structure has none."""
    out = np.full((length, 3), np.nan)
    for res, j in zip(residues, alignment.mapping, strict=True):
        if j is not None and res.cb is not None:
            out[j] = res.cb
    return out


def write_bfactors(
    source: str | os.PathLike,
    target: str | os.PathLike,
    residues: list[Residue],
    mapping: list[int | None],
    values: np.ndarray,
) -> None:
    """``source`` as PDB with each placed residue's B-factors set to ``values[sequence index]``.

    Atoms of other chains and unplaced residues get 0, so colouring by B-factor in PyMOL
    (``spectrum b``) or ChimeraX (``color bfactor``) shows only the scored chain.
    """
    by_key = {(r.chain, r.number, r.icode): float(values[j]) for r, j in zip(residues, mapping, strict=True)
              if j is not None}  # fmt: skip
    structure = _read(Path(source))
    for model in structure:
        for chain in model:
            for residue in chain:
                value = by_key.get((chain.name, residue.seqid.num, residue.seqid.icode.strip()), 0.0)
                for atom in residue:
                    atom.b_iso = round(value, 2)
    options = gemmi.PdbWriteOptions(minimal_file=True)  # no dated header: reruns are byte-identical
    write_text(target, structure.make_pdb_string(options))


def ideal_helix(length: int) -> np.ndarray:
    """C-alpha coordinates of an ideal alpha helix (3.6 residues/turn, 1.5 A rise, 2.3 A radius)."""
    turn = np.deg2rad(100.0) * np.arange(length)
    return np.stack([2.3 * np.cos(turn), 2.3 * np.sin(turn), 1.5 * np.arange(length)], axis=1)


def write_ca_pdb(path: str | os.PathLike, sequence: str, coords: np.ndarray, chain: str = "A", first: int = 1) -> None:
    """A C-alpha-only PDB of ``sequence`` at ``coords`` (residues numbered from ``first``)."""
    lines = []
    for i, (letter, (x, y, z)) in enumerate(zip(sequence, coords, strict=True)):
        name = ONE_TO_THREE[letter].upper()
        lines.append(
            f"ATOM  {i + 1:5d}  CA  {name} {chain}{first + i:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00           C"
        )
    write_text(path, "\n".join(lines + ["TER", "END"]) + "\n")
