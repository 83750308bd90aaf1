# Stage data: an image manifest (path, label, split, sha1) per dataset, every image checked.
from featvis.vision.listing import folder_digest  # no torch: the workflow parses fast


include: "functions/data.smk"


rule data:
    input:
        lambda wc: dataset_inputs(wc.dataset),
    output:
        manifest=f"{RESULTS}/data/{{dataset}}/manifest.csv",
        skipped=f"{RESULTS}/data/{{dataset}}/skipped.csv",
        quality=f"{RESULTS}/data/{{dataset}}/quality.csv",
    log:
        "logs/data/{dataset}.log",
    conda:
        FEATVIS_ENV
    threads: config["threads"]  # processes that check images; the tables do not depend on them
    resources:
        mem_mb=per_images(1000, 1),
        runtime=per_images(10, 1),
    params:
        spec=lambda wc: config["datasets"][wc.dataset],
        image_dir=lambda wc: f"{RESULTS}/data/{wc.dataset}/images",
        listing=lambda wc: dataset_listing(wc.dataset),
    script:
        "../../scripts/data.py"
