import re
from pathlib import Path

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
from featvis.protein.table import read_table


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


@pytest.mark.parametrize("bad", ["R175", "175H", "p.Arg175Xyz", "J5A", "p.Arg175"])
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
    long = ("MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ" * 40)[:1200]
    assert load_sequence(long, base=tmp_path) == long
    table = tmp_path / "t.tsv"
    table.write_text(f"id\tsequence\tvariants\nbig\t{long}\tK2A\n")
    (entry,) = read_table(table, base=tmp_path)
    assert len(entry.sequence) == 1200 and entry.fasta is None and entry.files() == []


def test_a_fasta_file_named_with_letters_only_is_read(tmp_path):
    (tmp_path / "myprotein").write_text(">p\nACDE\n")
    assert load_sequence("myprotein", base=tmp_path) == "ACDE"


# ---------------------------------------------------------------- variants as people write them

TP53 = Path(__file__).resolve().parents[2] / "config/examples/tp53.fasta"


@pytest.fixture(scope="module")
def tp53():
    return read_fasta(TP53)["sp|P04637|P53_HUMAN"]


@pytest.mark.parametrize("written", ["R175H", "p.R175H", "p.Arg175His", "p.(Arg175His)", "p.(R175H)"])
def test_missense_as_people_write_it(written, tp53):
    (variant,) = parse_variants(written, tp53)
    assert (variant.wild_type, variant.position, variant.mutant, variant.label) == ("R", 175, "H", "R175H")
    assert not variant.synonymous and variant.notation == written


@pytest.mark.parametrize("written", ["p.Arg175=", "R175=", "p.R175="])
def test_synonymous_is_kept_and_labelled(written, tp53):
    (variant,) = parse_variants(written, tp53)
    assert variant.synonymous and variant.label == "R175=" and variant.apply(tp53) == tp53


@pytest.mark.parametrize(
    "written, kind",
    [
        ("p.Arg213Ter", "a nonsense"), ("p.R213*", "a nonsense"), ("R213*", "a nonsense"),
        ("p.Arg213fs", "a frameshift"), ("p.Arg213ProfsTer5", "a frameshift"), ("p.Pro72del", "a deletion"),
        ("p.Lys101_Thr102insGly", "an insertion"), ("p.Arg175_Cys176delinsHisSer", "a deletion-insertion"),
        ("p.Gly245dup", "a duplication"), ("p.[Arg175His;Gly245Ser]", "a change of several residues"),
    ],
)  # fmt: skip
def test_other_changes_are_refused_with_one_sentence(written, kind, tp53):
    with pytest.raises(SequenceError, match=rf"{re.escape(repr(written))} is {kind}.*featvis scores single missense"):
        parse_variants(written, tp53)


def test_table_errors_give_the_file_line_counting_comments(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text(f"# proteins\n# second comment\nid\tsequence\tvariants\n\nok\t{TP53}\tR175H\n"
                    f"# a comment between rows\ntp53\t{TP53}\tR175H;p.Arg213Ter\n")  # fmt: skip
    with pytest.raises(SequenceError, match=r"t\.tsv line 7 \(tp53\): variant 'p.Arg213Ter' is a nonsense"):
        read_table(path)


def test_a_comma_separated_table_gets_a_hint_to_use_tabs(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(f"# exported from a spreadsheet\nid,sequence,variants\ntp53,{TP53},R175H\n")
    with pytest.raises(SequenceError, match=r"t\.csv line 2: .*comma-separated: featvis reads tab-separated"):
        read_table(path)


def test_stray_characters_inside_a_sequence_are_named_with_positions(tmp_path, tp53):
    typed = tp53[:99] + "B" + tp53[100:199] + "7" + tp53[200:]  # a B at 100 and a 7 at 200, inline in the table
    path = tmp_path / "t.tsv"
    path.write_text(f"id\tsequence\tvariants\ntp53\t{typed}\tR175H\n")
    with pytest.raises(SequenceError) as caught:
        read_table(path)
    message = str(caught.value)
    assert "line 2 (tp53)" in message and "not amino acids: 'B' at position 100, '7' at position 200" in message
    assert "FASTA" not in message and "not found" not in message
