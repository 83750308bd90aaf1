"""Concepts: a dictionary per layer (NMF, TopK sparse autoencoder) learned from a streamed,
seeded sample of the layer's activations; codes streamed over the dataset for top-K patches,
frequencies and class presence; quality numbers (R2, L0, dead fraction, stability)."""
