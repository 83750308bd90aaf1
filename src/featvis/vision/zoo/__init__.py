"""Architectures written here because no installed package builds them (weights load from files)."""
