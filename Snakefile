# featvis: shows what a neural network has learned.
#
# `snakemake --cores all` runs the embedded default, config/config.yaml. With
# `--configfile my.yaml` your file is the whole config: the default is not read at all.
# The config is resolved once (featvis.core.config: checked, defaults filled, job
# settings merged, stage layers chosen) and written to results/config.resolved.yaml;
# every rule reads the resolved values, and cluster jobs read that file.
import os
import sys

from snakemake.utils import min_version

min_version("9.0")

# Rule scripts import featvis from this checkout, installed or not, and their shared
# Snakemake adapters from scripts/.
sys.path.insert(0, f"{workflow.basedir}/src")
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(
        None,
        [
            f"{workflow.basedir}/src",
            f"{workflow.basedir}/scripts",
            os.environ.get("PYTHONPATH"),
        ],
    )
)

if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"


report: "workflow/report/workflow.rst"


envvars:
    "PYTHONPATH",


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/attention.smk"
include: "workflow/rules/render.smk"
include: "workflow/rules/trust.smk"
include: "workflow/rules/patches.smk"
include: "workflow/rules/neighbors.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/attribution.smk"
include: "workflow/rules/concepts.smk"
include: "workflow/rules/gallery.smk"


rule all:
    default_target: True
    input:
        data_targets(),
        models_targets(),
        weights_targets(),
        features_targets(),
        attention_targets(),
        render_targets(),
        trust_targets(),
        patches_targets(),
        neighbors_targets(),
        embed_targets(),
        attribution_targets(),
        concepts_targets(),
        gallery_targets(),
