"""Rule gallery_proteins: the protein reports, copied into the gallery so it stands alone."""
import shutil
from pathlib import Path

from featvis.core.runtime import start_job

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
source, out = Path(sm.params.source), Path(sm.output[0])
for path in map(Path, sm.input):
    dest = out / path.relative_to(source)
    if path.is_dir():
        shutil.copytree(path, dest)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
