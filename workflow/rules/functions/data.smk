# Helper functions of data.smk (kept apart from its rules: snakemake --lint).


def dataset_inputs(dataset):
    """A CSV dataset's table is an input (editing it reruns the check)."""
    spec = config["datasets"][dataset]
    return [spec["path"]] if spec["source"] == "csv" else []


def dataset_listing(dataset):
    """A folder dataset's images as a digest param: adding, removing or replacing one reruns the check."""
    spec = config["datasets"][dataset]
    return folder_digest(spec["path"]) if spec["source"] == "folder" else None


def data_targets():
    return [
        f"{RESULTS}/data/{name}/{file}"
        for name in config["datasets"]
        for file in ("manifest.csv", "skipped.csv", "quality.csv")
    ]
