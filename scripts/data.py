"""Rule data: build and check a dataset's manifest, with its image quality table."""
import sys

from featvis.core.runtime import start_job
from featvis.vision.data import CorruptImageError, build_rows, check_images, write_manifest

start_job(snakemake.log)  # noqa: F821 - injected by Snakemake
spec = snakemake.params.spec  # noqa: F821
rows = build_rows(spec, snakemake.params.image_dir)  # noqa: F821
dataset = snakemake.wildcards.dataset  # noqa: F821
try:
    manifest, skipped, quality = check_images(rows, spec["on_error"], f"dataset {dataset}",
                                              workers=snakemake.threads)  # noqa: F821
except CorruptImageError as error:  # one line on the console, with the fix; the traceback stays in the log
    print(f"featvis: CorruptImageError: {error}; replace or remove the file, or set "
          f"datasets.{dataset}.on_error: skip to leave such images out (listed in skipped.csv)", file=sys.__stderr__)
    raise
write_manifest(skipped, snakemake.output.skipped)  # noqa: F821
write_manifest(quality, snakemake.output.quality)  # noqa: F821
write_manifest(manifest, snakemake.output.manifest)  # noqa: F821
# What a user should see without opening the log (stdout reaches the console).
flagged = quality[quality["warning"] != ""]
print(f"data {snakemake.wildcards.dataset}: {len(manifest)} images, {int(quality['transparent'].sum())} with "  # noqa: F821
      f"transparency (composited onto grey), {len(skipped)} skipped, {len(flagged)} near-constant"
      + (f": {', '.join(flagged['path'].head(5))}; see {snakemake.output.quality}" if len(flagged) else ""))  # noqa: F821
