"""Rule gallery_proteins: the protein reports, copied into the gallery so it stands alone."""
from pathlib import Path

from featvis.core.io import copy_file
from featvis.core.runtime import start_job

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
source, out = Path(sm.params.source), Path(sm.output[0])


def report_files(path: Path) -> list[Path]:
    """The files of an input; hidden ones left out (a killed writer's .<name>.<pid>.<random>.part)."""
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


for path in map(Path, sm.input):
    for file in report_files(path):  # each copied atomically
        copy_file(file, out / file.relative_to(source))
