"""Fuzzing ledger exports (issue 29, what to build 8): any rows, cut anywhere, under either bad-row policy,
give a located error or the correct figure: never a silently different total, never an unbounded read.
The figure is checked against the rows as generated, not against a second reading of the file."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.core.errors import SourceError
from sources.ledger import gather_ledger
from sources.registry import SourceContext, is_available

PERIOD = (dt.date(2026, 9, 1), dt.date(2026, 9, 30))
HEADER = ["date", "account", "category", "amount", "memo"]
OPENING = Decimal("1000.00")

rows = st.lists(st.tuples(
    st.dates(dt.date(2026, 9, 17), dt.date(2026, 9, 30)),  # within the freshness window of the period end
    st.sampled_from(["4000 Sales", "6100 Fuel", "6200 Rent"]),
    st.sampled_from(["Sales", "Fuel", "Rent", ""]),
    st.decimals(min_value=Decimal("-99999.99"), max_value=Decimal("99999.99"), places=2, allow_nan=False,
                allow_infinity=False),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=12),
), min_size=1, max_size=25)


def export(generated) -> tuple[bytes, list[int]]:
    """The CSV bytes and, for each row, the offset just past its line break."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    ends = []
    for date, account, category, amount, memo in generated:
        writer.writerow([date.isoformat(), account, category, f"{amount:.2f}", memo])
        ends.append(len(buffer.getvalue().encode("utf-8")))
    return buffer.getvalue().encode("utf-8"), ends


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=rows, cut=st.one_of(st.none(), st.floats(0, 1)), policy=st.sampled_from(["fail", "skip"]))
def test_a_ledger_export_cut_anywhere_gives_a_located_error_or_the_correct_cash(tmp_path_factory, generated, cut,
                                                                                 policy):
    folder = tmp_path_factory.mktemp("fuzz")
    data, ends = export(generated)
    header_end = data.index(b"\n") + 1
    length = len(data) if cut is None else header_end + int(cut * (len(data) - header_end))
    (folder / "ledger.csv").write_bytes(data[:length])
    complete = [row for row, end in zip(generated, ends, strict=True) if end <= length]
    partial = len(complete) < len(generated) and length > (ends[len(complete) - 1] if complete else header_end)
    partial_line = len(complete) + 2  # header is line 1

    started = time.monotonic()
    try:
        figures = gather_ledger({"path": "ledger.csv", "opening_balance": str(OPENING), "on_bad_row": policy},
                                SourceContext("acme", "Acme", *PERIOD, folder))
    except SourceError as refused:
        # Only a cut row is refused (every generated row is valid), and the refusal names it.
        assert policy == "fail" and partial, (policy, partial, str(refused))
        assert f"ledger.csv:{partial_line}: column " in str(refused) and "cut short" in str(refused)
        return
    finally:
        assert time.monotonic() - started < 5
    assert not (policy == "fail" and partial), "a cut row was read as if whole"
    findings = figures["finance.ledger_problems"]
    if partial:
        [finding] = findings
        assert finding.startswith(f"ledger.csv:{partial_line}: column ") and "cut short" in finding
    else:
        assert findings == []
    cash = figures["finance.cash_on_hand"]
    if not complete:
        assert not is_available(cash)  # no entries: no figure, never a zero
        return
    assert cash == OPENING + sum(amount for _, _, _, amount, _ in complete)
