# featvis: shows what a neural network has learned. `snakemake --cores all` runs the
# embedded default (config/config.yaml); `--configfile` swaps in your own.
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/features.smk"


rule all:
    input:
        data_targets(),
        models_targets(),
        weights_targets(),
        features_targets(),
    default_target: True
