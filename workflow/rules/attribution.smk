def attribution_targets():
    return []
