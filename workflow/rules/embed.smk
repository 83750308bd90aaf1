def embed_targets():
    return []
