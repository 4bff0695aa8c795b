"""Chart of accounts (CSV: account, name, type): the accounts a ledger may post to.

Not a source of its own: the ledger source reads it (``sources.ledger.accounts``) to judge each
entry, because an entry on an account the chart does not know is a bookkeeping finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sources.tabular import BadRowPolicy, RowProblem, read_rows

ACCOUNT_TYPES = ("income", "expense", "asset", "liability", "equity")


@dataclass(frozen=True)
class Account:
    code: str
    name: str
    type: str


def read_chart(path: Path, policy: BadRowPolicy) -> dict[str, Account]:
    """Accounts keyed by the text a ledger uses in its ``account`` column."""
    chart: dict[str, Account] = {}
    for line, row in read_rows(path, ["account", "name", "type"], policy=policy):
        problems = []
        kind = row["type"].lower()
        if not row["account"]:
            problems.append(RowProblem(str(path), line, "account", row["account"], "the account is empty"))
        elif row["account"] in chart:
            problems.append(RowProblem(str(path), line, "account", row["account"], "the account is listed twice"))
        if kind not in ACCOUNT_TYPES:
            problems.append(RowProblem(str(path), line, "type", row["type"],
                                       f"expected one of {', '.join(ACCOUNT_TYPES)}"))
        if policy.reject(problems):
            continue
        chart[row["account"]] = Account(row["account"], row["name"], kind)
    return chart
