import pytest
import torch

from featvis.protein.models import random_esm2

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDF"


@pytest.fixture(scope="session")
def tiny_esm():
    """A randomly initialised ESM-2 (6 layers, 320 wide) built with fair-esm."""
    torch.set_num_threads(2)
    return random_esm2("esm2_t6_8M_UR50D", seed=0)


@pytest.fixture(scope="session")
def antiberty_lm():
    """AntiBERTy with the real weights that ship in its wheel."""
    from featvis.protein.models import load_protein_model

    return load_protein_model("antiberty")


@pytest.fixture
def sequence():
    return SEQ
