"""Vision stages: models, data, receptive fields, features and the dataset views."""
