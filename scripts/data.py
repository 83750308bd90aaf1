"""Rule data: build and check a dataset's manifest, with its image quality table."""
from featvis.core.runtime import start_job
from featvis.vision.data import build_rows, check_images, write_manifest

start_job(snakemake.log)  # noqa: F821 - injected by Snakemake
spec = snakemake.params.spec  # noqa: F821
rows = build_rows(spec, snakemake.params.image_dir)  # noqa: F821
manifest, skipped, quality = check_images(rows, spec["on_error"])
write_manifest(skipped, snakemake.output.skipped)  # noqa: F821
write_manifest(quality, snakemake.output.quality)  # noqa: F821
write_manifest(manifest, snakemake.output.manifest)  # noqa: F821
