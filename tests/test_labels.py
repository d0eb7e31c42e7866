"""Label files in the forms users have."""

import pytest

from edgecnn.errors import LabelsError
from edgecnn.labels import fit_labels, parse_labels, read_labels


@pytest.mark.parametrize("text", ["cat\ndog\n\nbird\n", "0 cat\n1 dog\n2 bird", "0: cat\n1: dog\n2: bird\n",
                                  "0,cat\n1,dog\n2,bird\n", "2  bird\n0  cat\n1  dog\n"])
def test_forms(text):
    assert parse_labels(text) == ["cat", "dog", "bird"]


def test_plain_labels_that_start_with_digits_stay_plain():
    assert parse_labels("3 piece suit\nhat\n") == ["3 piece suit", "hat"]
    assert parse_labels("3 little pigs\n101 dalmatians\n") == ["3 little pigs", "101 dalmatians"]


def test_gaps_and_duplicates():
    assert parse_labels("0 a\n2 c\n") == ["a", None, "c"]
    with pytest.raises(LabelsError, match="index 1 appears twice"):
        parse_labels("1 a\n1 b\n")


def test_fit_with_background_and_mismatch():
    assert fit_labels(["a", "b"], 2) == ["a", "b"]
    assert fit_labels(["a", "b"], 3) == ["background", "a", "b"]
    with pytest.raises(LabelsError, match="has 2 entries, model outputs 5"):
        fit_labels(["a", "b"], 5)


def test_read_errors(tmp_path):
    with pytest.raises(LabelsError, match="missing.txt"):
        read_labels(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(LabelsError, match="no labels"):
        read_labels(tmp_path / "empty.txt")
