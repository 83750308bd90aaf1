import pytest

from featvis.protein.sequences import (
    SequenceError,
    check_sequence,
    load_sequence,
    parse_domains,
    parse_variant,
    parse_variants,
    read_fasta,
)


def test_one_letter_and_hgvs_parse_to_the_same_variant():
    a, b = parse_variant("R175H"), parse_variant("p.Arg175His")
    assert (a.wild_type, a.position, a.mutant) == (b.wild_type, b.position, b.mutant) == ("R", 175, "H")
    assert a.index == 174


def test_variant_applies_at_the_right_position():
    seq = "ACDEFGHIK"
    variant = parse_variant("p.Glu4Trp")
    mutated = variant.apply(seq)
    assert mutated == "ACDWFGHIK"
    assert [i for i, (x, y) in enumerate(zip(seq, mutated, strict=True)) if x != y] == [3]


def test_letters_outside_the_alphabet_are_named():
    with pytest.raises(SequenceError, match=r"'B' at position 3.*'Z' at position 5"):
        check_sequence("ACBDZ")


def test_wild_type_mismatch_says_which_residue_is_there():
    with pytest.raises(SequenceError, match=r"has G \(Gly\) at position 2, not R"):
        parse_variants("R2H", "AGC")


def test_position_out_of_range():
    with pytest.raises(SequenceError, match="position 9 is out of range.*3 residues"):
        parse_variants("A9C", "AGC")


@pytest.mark.parametrize("bad", ["R175", "175H", "p.Arg175Xyz", "R175R", "J5A"])
def test_unreadable_variants(bad):
    with pytest.raises(SequenceError):
        parse_variant(bad)


def test_fasta_roundtrip(tmp_path):
    path = tmp_path / "x.fasta"
    path.write_text(">first desc\nACDE\nFGH\n>second\nKLM\n")
    assert read_fasta(path) == {"first": "ACDEFGH", "second": "KLM"}
    assert load_sequence("x.fasta", base=tmp_path) == "ACDEFGH"
    assert load_sequence("acde") == "ACDE"


def test_fasta_with_bad_letters_names_the_record(tmp_path):
    path = tmp_path / "x.fa"
    path.write_text(">p1\nAC*DE\n")
    with pytest.raises(SequenceError, match="record 'p1'.*'\\*' at position 3"):
        read_fasta(path)


def test_domains():
    domains = parse_domains("FR1:1-3; CDR1:4-6", 10)
    assert [(d.name, d.start, d.end) for d in domains] == [("FR1", 1, 3), ("CDR1", 4, 6)]
    with pytest.raises(SequenceError, match="within 1-10"):
        parse_domains("CDR3:8-12", 10)


def test_long_inline_sequences_are_not_file_names(tmp_path):
    """A 1,200-residue inline sequence used to crash with 'File name too long'."""
    from featvis.protein.table import read_table

    long = ("MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ" * 40)[:1200]
    assert load_sequence(long, base=tmp_path) == long
    table = tmp_path / "t.tsv"
    table.write_text(f"id\tsequence\tvariants\nbig\t{long}\tK2A\n")
    (entry,) = read_table(table, base=tmp_path)
    assert len(entry.sequence) == 1200 and entry.fasta is None and entry.files() == []


def test_a_fasta_file_named_with_letters_only_is_read(tmp_path):
    (tmp_path / "myprotein").write_text(">p\nACDE\n")
    assert load_sequence("myprotein", base=tmp_path) == "ACDE"
