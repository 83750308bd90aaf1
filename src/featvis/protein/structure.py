"""Structures: read a PDB chain, match it to the sequence, write scores as B-factors.

Matching is a global alignment (match +2, mismatch -1, gap -2) of the chain's residues
to the sequence, so residues missing from the structure (unresolved loops) are fine,
while a residue that differs from the sequence, or one the sequence lacks, is an error
that says where they disagree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featvis.core.io import write_text
from featvis.protein.sequences import ONE_TO_THREE, THREE_TO_ONE

_UPPER_THREE = {three.upper(): one for three, one in THREE_TO_ONE.items()} | {"MSE": "M"}


class StructureError(ValueError):
    """A structure file that cannot be used with the given sequence."""


@dataclass(frozen=True)
class Residue:
    chain: str
    number: int
    icode: str
    name: str  # three-letter, as in the file
    ca: tuple[float, float, float] | None

    @property
    def letter(self) -> str:
        return _UPPER_THREE.get(self.name, "X")

    @property
    def label(self) -> str:
        return f"{self.chain}:{self.name}{self.number}{self.icode.strip()}"


def _key(line: str) -> tuple[str, int, str]:
    return line[21], int(line[22:26]), line[26]


def read_residues(path: str | os.PathLike, chain: str | None = None) -> list[Residue]:
    """Residues of one chain (the first one when ``chain`` is None), first model only."""
    path = Path(path)
    if not path.is_file():
        raise StructureError(f"PDB file not found: {path}")
    residues: dict[tuple[str, int, str], dict] = {}
    for line in path.read_text().splitlines():
        if line.startswith("ENDMDL"):
            break
        record = line[:6].strip()
        if record not in ("ATOM", "HETATM") or len(line) < 54:
            continue
        if record == "HETATM" and line[17:20].strip() != "MSE":
            continue
        if chain is None:
            chain = line[21]
        if line[21] != chain:
            continue
        key = _key(line)
        entry = residues.setdefault(key, {"name": line[17:20].strip(), "ca": None})
        if line[12:16].strip() == "CA" and line[16] in (" ", "A"):
            entry["ca"] = (float(line[30:38]), float(line[38:46]), float(line[46:54]))
    if not residues:
        raise StructureError(f"{path} has no residues for chain {chain!r}")
    return [Residue(k[0], k[1], k[2], v["name"], v["ca"]) for k, v in residues.items()]


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


def match_residues(residues: list[Residue], sequence: str) -> list[int]:
    """0-based sequence index of each structure residue; raise where they disagree."""
    pairs = align("".join(r.letter for r in residues), sequence)
    mapping: list[int | None] = [None] * len(residues)
    problems = []
    for i, j in pairs:
        if i is None:
            continue
        res = residues[i]
        if j is None:
            problems.append(f"structure residue {res.label} has no counterpart in the sequence")
            continue
        mapping[i] = j
        if res.letter != sequence[j]:
            expected = ONE_TO_THREE.get(sequence[j], sequence[j]).upper()
            problems.append(f"structure residue {res.label} vs sequence position {j + 1} {expected} ({sequence[j]})")
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise StructureError(f"the structure's residues do not match the sequence: {shown}")
    return [int(j) for j in mapping]  # type: ignore[arg-type]


def write_bfactors(
    source: str | os.PathLike,
    target: str | os.PathLike,
    residues: list[Residue],
    mapping: list[int],
    values: np.ndarray,
) -> None:
    """Copy ``source`` with each matched residue's B-factor set to ``values[sequence index]``.

    Atoms of other chains and unmatched residues get 0.00, so colouring by B-factor in
    PyMOL (``spectrum b``) or ChimeraX (``color bfactor``) shows only the scored chain.
    """
    by_key = {(r.chain, r.number, r.icode): values[j] for r, j in zip(residues, mapping, strict=True)}
    out = []
    for line in Path(source).read_text().splitlines():
        if line[:6].strip() in ("ATOM", "HETATM") and len(line) >= 54:
            value = float(by_key.get(_key(line), 0.0))
            line = f"{line[:60].ljust(60)}{value:6.2f}{line[66:]}"
        out.append(line)
    write_text(target, "\n".join(out) + "\n")


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
