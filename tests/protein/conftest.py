import pytest
import torch

from featvis.protein.models import fair_esm2_module, random_esm2

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDF"


@pytest.fixture(scope="session")
def tiny_esm():
    """A randomly initialised ESM-2 (6 layers, 320 wide): fair-esm's seeded weights, run by transformers."""
    torch.set_num_threads(2)
    return random_esm2("esm2_t6_8M_UR50D", seed=0)


@pytest.fixture(scope="session")
def tiny_fair():
    """fair-esm's own ESM2 module with the same weights as ``tiny_esm``: the reference implementation."""
    return fair_esm2_module("esm2_t6_8M_UR50D", seed=0)


@pytest.fixture(scope="session")
def antiberty_lm():
    """AntiBERTy with the real weights that ship in its wheel."""
    from featvis.protein.models import load_protein_model

    return load_protein_model("antiberty")


@pytest.fixture
def sequence():
    return SEQ
