"""The payment CSV: the columns a researcher uploads to pay, formula-safe."""

from __future__ import annotations

import csv
import io

import pytest

from rmgap_annot.crowd.payment import COLUMNS, PaymentRow, payment_csv


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_columns_and_values():
    text = payment_csv([
        PaymentRow("5f3a1b2c3d4e5f6a7b8c9d0e", "prolific", "completed", 20, 31.27, True),
        PaymentRow("A1B2C3D4E5F6", "mturk", "screened out", 2, None, False),
    ])
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert COLUMNS == ("participant_id", "platform", "status", "labels", "minutes_worked", "completion_code_given")
    first, second = _rows(text)
    assert first == {"participant_id": "5f3a1b2c3d4e5f6a7b8c9d0e", "platform": "prolific", "status": "completed",
                     "labels": "20", "minutes_worked": "31.3", "completion_code_given": "yes"}
    assert second["minutes_worked"] == "n/a (no label submitted yet)" and second["completion_code_given"] == "no"


def test_a_participant_id_never_runs_as_a_formula(tmp_path):
    out = tmp_path / "pay.csv"
    payment_csv([PaymentRow("=HYPERLINK(\"x\")", "generic", "active", 0, 0.0, False)], out)
    row = _rows(out.read_text(encoding="utf-8"))[0]
    assert row["participant_id"] == "'=HYPERLINK(\"x\")" and row["minutes_worked"] == "0.0"


def test_unknown_status_is_refused():
    with pytest.raises(ValueError, match="status"):
        payment_csv([PaymentRow("p1", "generic", "paid", 1, 1.0, True)])
