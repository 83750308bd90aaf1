"""How much work a protein is, before any job runs: model passes and seconds.

A pass's cost follows from the architecture (layers, width, tokens): the linear layers grow
with the tokens and the attention with their square. One short calibration pass of the model
on this machine gives its speed (operations per second); the estimate divides the work by it.
Torch-free: the workflow's start check imports this.
"""

from __future__ import annotations

from dataclasses import dataclass

from featvis.core.progress import duration


def tile_windows(length: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """Half-open [start, end) windows of ``window`` residues overlapping by ``overlap``."""
    if length <= window:
        return [(0, length)]
    if not 0 <= overlap < window:
        raise ValueError(f"tile overlap must be in [0, {window}), got {overlap}")
    step = window - overlap
    starts = list(range(0, length - window + 1, step))
    if starts[-1] != length - window:
        starts.append(length - window)
    return [(s, s + window) for s in starts]


@dataclass(frozen=True)
class Architecture:
    """What a pass's cost depends on (from the model inspected at start)."""

    layers: int
    dim: int
    vocab: int
    max_residues: int


def pass_operations(arch: Architecture, tokens: int) -> float:
    """Multiply-adds x 2 of one sequence's pass: projections and feed-forward (12 d^2 per token and
    layer), attention scores and mixing (2 T d per token and layer), the output head."""
    per_layer = 24 * tokens * arch.dim**2 + 4 * tokens**2 * arch.dim
    return arch.layers * per_layer + 2 * tokens * arch.dim * (arch.dim + arch.vocab)


@dataclass(frozen=True)
class WorkEstimate:
    protein: str
    residues: int
    importance_passes: int  # wild type and each variant, every window
    scan_passes: int  # masked copies of a window (masked scan), or the variants' masked positions
    scan: str
    importance_seconds: float
    scan_seconds: float

    @property
    def passes(self) -> int:
        return self.importance_passes + self.scan_passes

    @property
    def seconds(self) -> float:
        return self.importance_seconds + self.scan_seconds

    def sentence(self) -> str:
        return (
            f"protein {self.protein!r} ({self.residues} residues): about {self.passes} model passes "
            f"({self.importance_passes} for importance, {self.scan_passes} for the {self.scan} scan), "
            f"about {duration(self.seconds)} here"
        )


def estimate_work(
    protein: str,
    length: int,
    variants: int,
    arch: Architecture,
    operations_per_second: float,
    scan: str = "masked",
    window: int | None = None,
    overlap: int = 256,
    logo_window: int = 7,
) -> WorkEstimate:
    """Passes and seconds of one protein's compute job (``featvis.protein.report.compute_protein``)."""
    window = min(window or arch.max_residues, arch.max_residues)
    tiles = tile_windows(length, window, min(overlap, window - 1))
    sizes = [end - start + 2 for start, end in tiles]  # + the two special tokens
    per_sequence = sum(pass_operations(arch, t) for t in sizes)
    scan_tokens = min(length, window) + 2
    if scan == "masked":  # one masked copy per residue, in its window
        scan_passes = length
    else:  # the variants' masked positions and their logo windows
        scan_passes = min(length, variants * (2 * logo_window + 2))
    speed = max(operations_per_second, 1.0)
    return WorkEstimate(
        protein=protein,
        residues=length,
        importance_passes=(1 + variants) * len(tiles),
        scan_passes=scan_passes,
        scan=scan,
        importance_seconds=(1 + variants) * per_sequence / speed,
        scan_seconds=scan_passes * pass_operations(arch, scan_tokens) / speed,
    )
