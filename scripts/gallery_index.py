"""Rule gallery_index: the gallery's front page and its local stylesheet and script."""
from pathlib import Path

from featvis.core.runtime import start_job
from featvis.gallery.site import build_index, write_assets
from featvis.vision.data import read_manifest

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
write_assets(sm.output.assets)
datasets = {name: {"source": d["source"], "images": len(read_manifest(d["manifest"]))}
            for name, d in sm.params.datasets.items()}
build_index(Path(sm.output.page).parent, sm.params.models, datasets, sm.params.proteins, sm.params.protein_count,
            [tuple(u) for u in sm.params.featured])
