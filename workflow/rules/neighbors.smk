def neighbors_targets():
    return []
