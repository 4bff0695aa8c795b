"""Equity source: the balance sheet and the cap table, kept as CSV per tenant.

Settings (under ``sources.equity``):
    balance_sheet  CSV: as_of, section, item, amount. section is one of cash, asset, liability, equity
                   (cash lines are assets too; they are kept apart so the report can say which cash
                   figure it shows and as of when). The file may hold several closes: the latest
                   as_of on or before the period end is used. Liabilities and equity are positive
                   amounts; a negative equity line is a deficit.
    cap_table      CSV: holder, share_class and either shares (whole numbers; ownership is each
                   holder's share of all shares) or ownership_percent (as recorded; may not add to 100).
                   Not set: no cap table on record, which the CEO brief flags as a risk.
    on_bad_row     fail (default) | skip
    max_age_days   a balance sheet dated more than this many days before the period end is out of date
                   (default 120): its figures are still shown, marked as out of date

Equity here is book equity: total assets minus total liabilities. When the sheet lists equity lines,
their sum is compared with that, and the difference is reported (a sheet that does not balance).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sources.errors import SourceError
from sources.registry import REGISTRY, MetricSpec, SourceContext, Unavailable
from sources.tabular import BadRowPolicy, MissingFile, RowProblem, parse_amount, parse_date, read_rows

SECTIONS = ("cash", "asset", "liability", "equity")

DEFAULT_MAX_AGE_DAYS = 120

BALANCE_METRICS = ("equity.as_of", "equity.as_of_shown", "equity.age_days", "equity.out_of_date", "equity.balance_sheet", "equity.cash", "equity.total_assets",
                   "equity.total_liabilities", "equity.book_equity", "equity.balance_difference",
                   "equity.liabilities_percent_of_assets")
CAP_TABLE_METRICS = ("equity.cap_table", "equity.cap_table_holders", "equity.ownership_total_percent",
                     "equity.largest_holder", "equity.largest_holder_percent", "equity.largest_holding")

METRICS = [
    MetricSpec("equity.as_of", "Date of the balance sheet used: the latest as_of on or before the period end.",
               "date"),
    MetricSpec("equity.as_of_shown", "The balance sheet's date as a table shows it: \"Oct 31\" in the period's "
               "year, \"Jun 30, 2025\" before it, with \" (out of date)\" after an out-of-date one.", "text"),
    MetricSpec("equity.age_days", "Days from the balance sheet's date to the period end.", "number"),
    MetricSpec("equity.out_of_date", "Whether the balance sheet is older than max_age_days (default 120) at the "
               "period end: its figures may no longer describe the business.", "boolean"),
    MetricSpec("equity.balance_sheet", "The balance sheet lines as of that date (rows: section, item, amount; "
               "section: cash, asset, liability, equity).", "table"),
    MetricSpec("equity.cash", "Cash on the balance sheet (its cash lines) as of its date; the ledger's cash on "
               "hand is at the period end and may differ.", "money"),
    MetricSpec("equity.total_assets", "Total assets on the balance sheet (cash and other assets).", "money"),
    MetricSpec("equity.total_liabilities", "Total liabilities on the balance sheet.", "money"),
    MetricSpec("equity.book_equity", "Book equity: total assets minus total liabilities (negative when "
               "liabilities exceed assets).", "money"),
    MetricSpec("equity.balance_difference", "The sheet's own equity lines minus book equity: 0 when the sheet "
               "balances; unavailable when it lists no equity lines.", "money"),
    MetricSpec("equity.liabilities_percent_of_assets", "Total liabilities as a percent of total assets.",
               "percent"),
    MetricSpec("equity.cap_table", "Each holder's stake, largest first (rows: holder, share_class, shares, "
               "ownership_percent; shares empty when the cap table records percentages).", "table"),
    MetricSpec("equity.cap_table_holders", "Number of distinct holders on the cap table; 0 when no cap table "
               "is on record.", "number"),
    MetricSpec("equity.ownership_total_percent", "Recorded ownership added up, in percent (100 when the cap "
               "table records shares; 0 when no cap table is on record).", "percent"),
    MetricSpec("equity.largest_holder", "The holder with the largest stake (all classes together).", "text"),
    MetricSpec("equity.largest_holder_percent", "The largest holder's stake, in percent (ownership "
               "concentration).", "percent"),
    MetricSpec("equity.largest_holding", "The largest holder and its stake in words, for a table cell: "
               "\"Sample Holdings LLC (75.0%)\".", "text"),
    MetricSpec("equity.problems", "Balance sheet and cap table rows left out under on_bad_row: skip.", "list"),
]


@REGISTRY.register("equity", "Balance sheet and cap table, kept as CSV.", METRICS)
def gather_equity(settings: Mapping[str, Any], context: SourceContext) -> dict[str, Any]:
    if "balance_sheet" not in settings and "cap_table" not in settings:
        raise SourceError(f"tenant '{context.tenant_id}': sources.equity needs balance_sheet and/or cap_table")
    max_age = settings.get("max_age_days", DEFAULT_MAX_AGE_DAYS)
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 1:
        raise SourceError(f"tenant '{context.tenant_id}': sources.equity.max_age_days: expected a whole number of "
                          f"days, at least 1, got {max_age!r}")
    policy = BadRowPolicy(settings, "equity", context.tenant_id, context.base_dir)
    result: dict[str, Any] = {}
    if "balance_sheet" in settings:
        try:
            result.update(balance_sheet(context.resolve(settings["balance_sheet"]), context, policy, max_age))
        except MissingFile as exc:
            result.update({name: Unavailable(name, str(exc)) for name in BALANCE_METRICS})
    else:
        result.update({name: Unavailable(name, "sources.equity.balance_sheet is not set",
                                         plain="no balance sheet on record") for name in BALANCE_METRICS})
    if "cap_table" in settings:
        try:
            result.update(cap_table(context.resolve(settings["cap_table"]), policy))
        except MissingFile as exc:
            result.update({name: Unavailable(name, str(exc)) for name in CAP_TABLE_METRICS})
    else:
        result.update(cap_table_rows([], reason="sources.equity.cap_table is not set"))
    result["equity.problems"] = policy.findings
    return result


def balance_sheet(path, context: SourceContext, policy: BadRowPolicy,
                  max_age_days: int = DEFAULT_MAX_AGE_DAYS) -> dict[str, Any]:
    lines: list[dict[str, Any]] = []
    for line, row in read_rows(path, ["as_of", "section", "item", "amount"], policy=policy):
        problems = []
        try:
            as_of = parse_date(row["as_of"])
        except ValueError as exc:
            problems.append(RowProblem(str(path), line, "as_of", row["as_of"], str(exc)))
        section = row["section"].lower()
        if section not in SECTIONS:
            problems.append(RowProblem(str(path), line, "section", row["section"],
                                       f"expected one of {', '.join(SECTIONS)}"))
        if not row["item"]:
            problems.append(RowProblem(str(path), line, "item", row["item"], "is empty"))
        try:
            amount = parse_amount(row["amount"])
        except ValueError as exc:
            problems.append(RowProblem(str(path), line, "amount", row["amount"], str(exc)))
        if policy.reject(problems):
            continue
        lines.append({"as_of": as_of, "section": section, "item": row["item"], "amount": amount})
    dates = sorted({entry["as_of"] for entry in lines if entry["as_of"] <= context.period_end})
    if not dates:
        first = min((entry["as_of"] for entry in lines), default=None)
        reason = f"{path}: no balance sheet dated on or before {context.period_end}" + (
            f" (the first is {first})" if first else " (the file has no lines)")
        plain = "no balance sheet on record for the period"
        return {name: Unavailable(name, reason, plain=plain) for name in BALANCE_METRICS}
    as_of: dt.date = dates[-1]
    current = [entry for entry in lines if entry["as_of"] == as_of]

    def total(*sections: str) -> Decimal:
        return sum((entry["amount"] for entry in current if entry["section"] in sections), Decimal(0))

    assets, liabilities = total("cash", "asset"), total("liability")
    book_equity = assets - liabilities
    has_equity_lines = any(entry["section"] == "equity" for entry in current)
    age_days = (context.period_end - as_of).days
    return {
        "equity.as_of": as_of,
        "equity.as_of_shown": (f"{as_of:%b} {as_of.day}" + ("" if as_of.year == context.period_end.year
                                                            else f", {as_of.year}")
                               + (" (out of date)" if age_days > max_age_days else "")),
        "equity.age_days": age_days,
        "equity.out_of_date": age_days > max_age_days,
        "equity.balance_sheet": [{k: entry[k] for k in ("section", "item", "amount")} for entry in current],
        "equity.cash": total("cash"),
        "equity.total_assets": assets,
        "equity.total_liabilities": liabilities,
        "equity.book_equity": book_equity,
        "equity.balance_difference": total("equity") - book_equity if has_equity_lines else Unavailable(
            "equity.balance_difference", f"{path} lists no equity lines for {as_of}",
            plain="the balance sheet lists no equity lines"),
        "equity.liabilities_percent_of_assets": round(float(liabilities / assets * 100), 1) if assets > 0 else
        Unavailable("equity.liabilities_percent_of_assets", f"total assets are {assets} on {as_of}",
                    plain="the balance sheet shows no assets"),
    }


def cap_table(path, policy: BadRowPolicy) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    by_shares: bool | None = None
    for line, row in read_rows(path, ["holder", "share_class"], policy=policy):
        if by_shares is None:
            if "shares" not in row and "ownership_percent" not in row:
                raise SourceError(f"{path}:1: needs a shares or an ownership_percent column; found "
                                  f"{', '.join(row)}")
            by_shares = "shares" in row
        problems = []
        if not row["holder"]:
            problems.append(RowProblem(str(path), line, "holder", row["holder"], "is empty"))
        column = "shares" if by_shares else "ownership_percent"
        text = row[column].replace(",", "")
        amount: Decimal | None = None
        try:
            amount = parse_amount(text.rstrip("%"))
        except ValueError as exc:
            problems.append(RowProblem(str(path), line, column, row[column], str(exc)))
        if amount is not None:
            if by_shares and (amount <= 0 or amount != amount.to_integral_value()):
                problems.append(RowProblem(str(path), line, column, row[column], "not a whole number above 0"))
            elif not by_shares and not 0 < amount <= 100:
                problems.append(RowProblem(str(path), line, column, row[column], "not a percent above 0 and at "
                                                                                 "most 100"))
        if policy.reject(problems):
            continue
        rows.append({"holder": row["holder"], "share_class": row["share_class"] or "Common",
                     "shares": int(amount) if by_shares else None,
                     "ownership_percent": None if by_shares else float(amount)})
    if by_shares:
        all_shares = sum(r["shares"] for r in rows)
        for r in rows:
            r["ownership_percent"] = round(r["shares"] / all_shares * 100, 2)
    return cap_table_rows(rows, recorded_total=None if by_shares else sum(r["ownership_percent"] for r in rows),
                          reason=f"{path} lists no holders")


def cap_table_rows(rows: list[dict[str, Any]], recorded_total: float | None = None, reason: str = "") -> dict[str, Any]:
    """The cap table metrics; ``recorded_total`` is the sum of recorded percentages (None when by shares);
    ``reason`` says why there are no rows, for the run summary."""
    if not rows:
        plain = "no cap table on record"
        return {"equity.cap_table": [], "equity.cap_table_holders": 0, "equity.ownership_total_percent": 0.0,
                "equity.largest_holder": Unavailable("equity.largest_holder", reason, plain=plain),
                "equity.largest_holder_percent": Unavailable("equity.largest_holder_percent", reason, plain=plain),
                "equity.largest_holding": Unavailable("equity.largest_holding", reason, plain=plain)}
    stakes: dict[str, float] = {}
    for r in rows:
        stakes[r["holder"]] = stakes.get(r["holder"], 0.0) + r["ownership_percent"]
    largest = min(stakes, key=lambda holder: (-stakes[holder], holder))
    return {
        "equity.cap_table": sorted(rows, key=lambda r: (-r["ownership_percent"], r["holder"])),
        "equity.cap_table_holders": len(stakes),
        "equity.ownership_total_percent": 100.0 if recorded_total is None else round(recorded_total, 2),
        "equity.largest_holder": largest,
        "equity.largest_holder_percent": round(stakes[largest], 2),
        "equity.largest_holding": f"{largest} ({stakes[largest]:.1f}%)",
    }
