# Stage data: an image manifest (path, label, split, sha1) per dataset, every image checked.
from featvis.vision.listing import folder_digest  # no torch: the workflow parses fast


def dataset_inputs(dataset):
    """A CSV dataset's table is an input (editing it reruns the check)."""
    spec = config["datasets"][dataset]
    return [spec["path"]] if spec["source"] == "csv" else []


def dataset_listing(dataset):
    """A folder dataset's images as a digest param: adding, removing or replacing one reruns the check."""
    spec = config["datasets"][dataset]
    return folder_digest(spec["path"]) if spec["source"] == "folder" else None


rule data:
    input:
        lambda wc: dataset_inputs(wc.dataset),
    output:
        manifest=f"{RESULTS}/data/{{dataset}}/manifest.csv",
        skipped=f"{RESULTS}/data/{{dataset}}/skipped.csv",
        quality=f"{RESULTS}/data/{{dataset}}/quality.csv",
    params:
        spec=lambda wc: config["datasets"][wc.dataset],
        image_dir=lambda wc: f"{RESULTS}/data/{wc.dataset}/images",
        listing=lambda wc: dataset_listing(wc.dataset),
    threads: config["threads"]  # processes that check images; the tables do not depend on them
    resources:
        mem_mb=per_images(1000, 1),
        runtime=per_images(10, 1),
    log:
        "logs/data/{dataset}.log",
    script:
        "../../scripts/data.py"


def data_targets():
    return [f"{RESULTS}/data/{name}/{file}" for name in config["datasets"] for file in ("manifest.csv", "skipped.csv", "quality.csv")]
