# Stage data: an image manifest (path, label, split, sha1) per dataset, every image checked.


rule data:
    output:
        manifest=f"{RESULTS}/data/{{dataset}}/manifest.csv",
        skipped=f"{RESULTS}/data/{{dataset}}/skipped.csv",
        quality=f"{RESULTS}/data/{{dataset}}/quality.csv",
    params:
        spec=lambda wc: config["datasets"][wc.dataset],
        image_dir=lambda wc: f"{RESULTS}/data/{wc.dataset}/images",
    log:
        "logs/data/{dataset}.log",
    script:
        "../../scripts/data.py"


def data_targets():
    return [f"{RESULTS}/data/{name}/{file}" for name in config["datasets"] for file in ("manifest.csv", "skipped.csv", "quality.csv")]
