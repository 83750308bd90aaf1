"""Protein language model attention reports: importance scores, variants, structures.

Modules: ``sequences`` (alphabet, FASTA, variant notation), ``models`` (ESM-2, AntiBERTy),
``attention`` (streaming aggregation, tiling), ``scoring`` (variant effect scores),
``structure`` (PDB matching, B-factors), ``viewer`` (offline 3D HTML), ``figures``, ``report``.
"""
