"""Protein sequences and variants: alphabet check, FASTA, variant notation.

Variants are single amino-acid substitutions written as ``R175H``, ``p.R175H`` (the one-letter
HGVS form of COSMIC and ClinVar summaries) or ``p.Arg175His`` (1-based positions); a synonymous
``p.Arg175=`` is kept and scores 0. Other changes (nonsense, frameshift, insertions, deletions,
several residues) are refused: the model scores one residue for another. Every check raises a
:class:`SequenceError` (a ``ValueError``) with a message a user can act on.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
AA_INDEX = {c: i for i, c in enumerate(AMINO_ACIDS)}  # an amino acid's row in score tables

THREE_TO_ONE = {
    "Ala": "A", "Arg": "R", "Asn": "N", "Asp": "D", "Cys": "C", "Gln": "Q", "Glu": "E",
    "Gly": "G", "His": "H", "Ile": "I", "Leu": "L", "Lys": "K", "Met": "M", "Phe": "F",
    "Pro": "P", "Ser": "S", "Thr": "T", "Trp": "W", "Tyr": "Y", "Val": "V",
}  # fmt: skip
ONE_TO_THREE = {one: three for three, one in THREE_TO_ONE.items()}

_ONE_LETTER = re.compile(r"^(?:p\.)?\(?([A-Z])(\d+)([A-Z]|=)\)?$")
_HGVS = re.compile(r"^p\.\(?([A-Z][a-z]{2})(\d+)([A-Z][a-z]{2}|=)\)?$")
MISSENSE_ONLY = (
    "featvis scores single missense substitutions (one amino acid for another: R175H, p.R175H or p.Arg175His)"
)
# What other changes look like in HGVS protein notation, checked in this order.
_OTHER_CHANGES = (
    ("a frameshift", re.compile(r"fs", re.IGNORECASE)),
    ("a deletion-insertion", re.compile(r"delins", re.IGNORECASE)),
    ("a duplication", re.compile(r"dup", re.IGNORECASE)),
    ("a deletion", re.compile(r"del", re.IGNORECASE)),
    ("an insertion", re.compile(r"ins", re.IGNORECASE)),
    ("an extension", re.compile(r"ext", re.IGNORECASE)),
    ("a change of several residues", re.compile(r"[_\[\];]")),
    ("a nonsense (stop) variant", re.compile(r"(Ter|\*|X)\)?$")),
    ("a change of unknown effect", re.compile(r"\?")),
)


class SequenceError(ValueError):
    """A sequence, FASTA file or variant that cannot be used as given."""


@dataclass(frozen=True)
class Variant:
    """A single substitution; ``position`` is 1-based as in the notation."""

    wild_type: str
    position: int
    mutant: str
    notation: str

    @property
    def index(self) -> int:
        """0-based index into the sequence."""
        return self.position - 1

    @property
    def synonymous(self) -> bool:
        """No change of amino acid (``p.Arg175=``): scored 0 by definition."""
        return self.mutant == self.wild_type

    @property
    def label(self) -> str:
        return f"{self.wild_type}{self.position}{'=' if self.synonymous else self.mutant}"

    def apply(self, sequence: str) -> str:
        check_variant(sequence, self)
        return sequence[: self.index] + self.mutant + sequence[self.index + 1 :]


def check_sequence(sequence: str, name: str = "sequence") -> str:
    """Upper-case ``sequence`` and reject characters that are not one of the 20 standard amino acids."""
    cleaned = "".join(sequence.split()).upper()
    if not cleaned:
        raise SequenceError(f"{name} is empty")
    bad = [(i + 1, c) for i, c in enumerate(cleaned) if c not in AMINO_ACIDS]
    if bad:
        shown = ", ".join(f"{c!r} at position {p}" for p, c in bad[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise SequenceError(
            f"{name} has characters that are not amino acids: {shown}{more} (of {len(cleaned)}; "
            f"the 20 standard amino acids are {AMINO_ACIDS})"
        )
    return cleaned


def read_fasta(path: str | os.PathLike) -> dict[str, str]:
    """Records of a FASTA file as {identifier: sequence}, checked against the alphabet."""
    path = Path(path)
    if not path.is_file():
        raise SequenceError(f"FASTA file not found: {path}")
    records: dict[str, list[str]] = {}
    current: str | None = None
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            current = line[1:].split()[0] if line[1:].strip() else f"record{len(records) + 1}"
            records[current] = []
        elif current is None:
            raise SequenceError(f"{path}:{number}: sequence before the first '>' header")
        else:
            records[current].append(line)
    if not records:
        raise SequenceError(f"{path} holds no FASTA records")
    return {key: check_sequence("".join(v), f"{path} record {key!r}") for key, v in records.items()}


FASTA_SUFFIXES = (".fa", ".fasta", ".faa", ".fas", ".fna", ".seq", ".txt", ".gz")


def is_inline_sequence(value: str, base: str | os.PathLike = ".") -> bool:
    """True for a sequence typed into the table, False for a FASTA path: a path has a directory
    separator or a FASTA suffix, or names a file that exists (long text never reaches the file
    system: names stop at 255 bytes). A sequence with stray characters stays a sequence, so its
    check can say which characters are wrong."""
    text = value.strip()
    if "/" in text or "\\" in text or text.lower().endswith(FASTA_SUFFIXES):
        return False
    if len(text) > 200:
        return True
    try:
        return not (Path(base) / text).is_file()
    except (OSError, ValueError):
        return True


def load_sequence(value: str, base: str | os.PathLike = ".") -> str:
    """A sequence given inline, or a FASTA path (first record) relative to ``base``."""
    text = value.strip()
    if is_inline_sequence(text, base):
        return check_sequence(text)
    return next(iter(read_fasta(Path(base) / text).values()))


def _refuse_other_change(notation: str) -> None:
    for kind, pattern in _OTHER_CHANGES:
        if pattern.search(notation.removeprefix("p.")):
            raise SequenceError(f"variant {notation!r} is {kind}: {MISSENSE_ONLY}")


def parse_variant(notation: str) -> Variant:
    """Parse ``R175H``, ``p.R175H``, ``p.Arg175His`` or a synonymous ``p.Arg175=`` into a :class:`Variant`."""
    text = notation.strip()
    match = _ONE_LETTER.match(text)
    if match and match.group(3) not in "X":  # X: a stop in the one-letter form
        wt, pos, mt = match.group(1), int(match.group(2)), match.group(3)
    else:
        match = _HGVS.match(text)
        if not match or match.group(3) == "Ter":
            _refuse_other_change(text)
            raise SequenceError(
                f"cannot read variant {notation!r}: write a substitution as 'R175H', 'p.R175H' or 'p.Arg175His'"
            )
        try:
            wt = THREE_TO_ONE[match.group(1)]
            mt = "=" if match.group(3) == "=" else THREE_TO_ONE[match.group(3)]
        except KeyError as err:
            raise SequenceError(f"variant {notation!r}: unknown amino acid {err.args[0]!r}") from None
        pos = int(match.group(2))
    mt = wt if mt == "=" else mt
    for letter in (wt, mt):
        if letter not in AMINO_ACIDS:
            raise SequenceError(f"variant {notation!r}: {letter!r} is not one of {AMINO_ACIDS}")
    if pos < 1:
        raise SequenceError(f"variant {notation!r}: positions start at 1")
    return Variant(wt, pos, mt, text)


def check_variant(sequence: str, variant: Variant) -> None:
    """Reject a variant whose position is out of range or whose wild type does not match."""
    if variant.position > len(sequence):
        raise SequenceError(
            f"variant {variant.notation}: position {variant.position} is out of range "
            f"(the sequence has {len(sequence)} residues)"
        )
    found = sequence[variant.index]
    if found != variant.wild_type:
        raise SequenceError(
            f"variant {variant.notation}: the sequence has {found} ({ONE_TO_THREE[found]}) at position "
            f"{variant.position}, not {variant.wild_type} ({ONE_TO_THREE[variant.wild_type]})"
        )


def parse_variants(text: str, sequence: str) -> list[Variant]:
    """Variants separated by ';' or ',' (not inside HGVS brackets), each checked against ``sequence``."""
    parts = re.split(r"[;,](?![^\[]*\])", text or "")
    variants = [parse_variant(part) for part in parts if part.strip()]
    for variant in variants:
        check_variant(sequence, variant)
    return variants


@dataclass(frozen=True)
class Domain:
    name: str
    start: int  # 1-based, inclusive
    end: int  # 1-based, inclusive


def parse_domains(text: str, length: int) -> list[Domain]:
    """Annotations ``name:start-end`` separated by ';' (1-based, inclusive)."""
    domains = []
    for part in (text or "").split(";"):
        part = part.strip()
        if not part:
            continue
        match = re.match(r"^(.+?):(\d+)-(\d+)$", part)
        if not match:
            raise SequenceError(f"cannot read domain {part!r}: write it as 'name:start-end', e.g. 'CDR1:26-33'")
        name, start, end = match.group(1).strip(), int(match.group(2)), int(match.group(3))
        if not 1 <= start <= end <= length:
            raise SequenceError(f"domain {part!r} must lie within 1-{length} with start <= end")
        domains.append(Domain(name, start, end))
    return domains
