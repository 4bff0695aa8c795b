"""Jinja's SandboxedEnvironment plus the render limits (``flows.templating.limits``): every ``for`` loop and
call checks the deadline, operators and filters that multiply their input are checked before they
allocate, integers stay under ``MAX_INT_BITS``. The intercepted operators are never folded at compile
time (Jinja skips constant folding of intercepted operators in a sandbox), so ``{{ 9**(9**9) }}`` is
refused when rendered, not computed when loaded."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from functools import wraps
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.visitor import NodeTransformer

from flows.core.errors import TemplateLimitError
from flows.templating.limits import (
    MAX_INT_BITS,
    MAX_RANGE,
    check_brace_format,
    check_percent_format,
    current_budget,
    short_repr,
    written_size,
)

_SEQUENCES = (str, bytes, list, tuple)
_CONTAINERS = (str, bytes, list, tuple, dict, set, frozenset)
_NESTED = (list, tuple, dict, set, frozenset)


def _int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _least_result_bits(operator: str, left: int, right: int) -> int:
    """The fewest bits ``left <operator> right`` can have (two bounded ints), computed without computing it."""
    if operator == "**" and right > 0 and abs(left) > 1:
        return (_int_bits(left) - 1) * right + 1
    if operator == "*" and left and right:
        return _int_bits(left) + _int_bits(right) - 1
    return 0


def _too_large(operator: str, left: Any, right: Any) -> TemplateLimitError:
    return TemplateLimitError(f"{short_repr(left)} {operator} {short_repr(right)} is too large: report templates "
                              f"allow integers up to {MAX_INT_BITS} bits")


class _BudgetedLoops(NodeTransformer):
    """Routes every ``for`` loop's iterable through the deadline check, and every ``~`` concatenation
    through the size check, by wrapping them in internal filters before code generation."""

    def __init__(self, environment: LimitedSandbox):
        self.environment = environment

    def _wrap(self, node: nodes.Expr, name: str) -> nodes.Filter:
        wrapped = nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)
        wrapped.set_environment(self.environment)
        return wrapped

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._wrap(node.iter, "_exec_reports_budgeted_iteration")
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._wrap(node, "_exec_reports_bounded_text")


@pass_context
def _budgeted_iteration(context: Any, iterable: Any) -> Any:
    budget = current_budget()
    if not budget.watching:
        return iterable
    return _iterate_with_ticks(iterable, budget.tick)


def _iterate_with_ticks(iterable: Any, tick: Any) -> Iterator[Any]:
    for item in iterable:
        tick()
        yield item


@pass_context
def _bounded_text(context: Any, value: Any) -> Any:
    current_budget().check_size(len(value), "a joined text")
    return value


def _budgeted_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TemplateLimitError(f"range() of {len(numbers):,} items is over the limit of {MAX_RANGE:,}")
    return numbers


# Filters whose output can be much larger than their input, checked before they run.
def _estimate_filter_output(name: str, args: tuple, kwargs: dict) -> int:
    def arg(index: int, key: str, default: Any) -> Any:
        return args[index] if len(args) > index else kwargs.get(key, default)

    value = args[0] if args else ""
    if name == "indent":
        width = arg(1, "width", 4)
        unit = len(width) if isinstance(width, str) else int(width)
        return len(str(value)) + (str(value).count("\n") + 1) * unit
    if name == "wordwrap":
        width, wrapstring = max(int(arg(1, "width", 79)), 1), arg(4, "wrapstring", None) or "\n"
        return len(str(value)) + (len(str(value)) // width + 1) * len(str(wrapstring))
    if name == "replace":
        text, old, new = str(value), str(arg(1, "old", "")), str(arg(2, "new", ""))
        count = text.count(old) if old else len(text) + 1
        return len(text) + count * max(0, len(new) - len(old))
    return 0


def _limited_filter(name: str, function: Any) -> Any:
    @wraps(function)
    def limited(*args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        budget.tick()
        # Skip a pass_context/pass_environment first argument.
        data_args = args[1:] if getattr(function, "jinja_pass_arg", None) is not None else args
        for extra in (*data_args[1:], *kwargs.values()):
            if isinstance(extra, int) and not isinstance(extra, bool) and extra > budget.max_bytes:
                budget.check_size(extra, f"an argument of the {name} filter")
        if name == "format" and data_args and isinstance(data_args[0], str):
            check_percent_format(data_args[0], budget)
        elif name in ("join", "sum") and data_args:
            items = list(data_args[0])
            if name == "sum" and not all(isinstance(item, int | float | Decimal) for item in items):
                if kwargs.get("attribute") is None and len(data_args) < 2:
                    raise TemplateLimitError("the sum filter adds numbers only in report templates")
            if name == "join":
                separator = data_args[1] if len(data_args) > 1 else kwargs.get("d", "")
                size = sum(written_size(item, budget.max_bytes) for item in items)
                budget.check_size(size + len(str(separator)) * max(len(items) - 1, 0), "a joined text")
            args = (*args[: len(args) - len(data_args)], items, *data_args[1:])
        elif name in ("indent", "wordwrap", "replace"):
            budget.check_size(_estimate_filter_output(name, data_args, kwargs), f"the output of {name}")
        elif name in ("batch", "slice"):
            fill = data_args[2] if len(data_args) > 2 else kwargs.get("fill_with")
            count = data_args[1] if len(data_args) > 1 else kwargs.get("linecount", kwargs.get("slices", 1))
            if fill is not None and isinstance(count, int):
                budget.check_size(written_size(fill, budget.max_bytes) * count, f"the output of {name}")
        result = function(*args, **kwargs)
        if isinstance(result, _CONTAINERS):
            budget.check_size(len(result), f"the output of {name}")
        return result

    return limited


# str methods that multiply their input; translate and expandtabs have no place in a report.
_STR_GROWING = {"ljust", "rjust", "center", "zfill"}
_STR_REFUSED = {"translate", "maketrans", "expandtabs"}
_MUTATORS = {"append", "extend", "insert", "update", "setdefault", "add", "fromkeys"}


class LimitedSandbox(SandboxedEnvironment):
    """Jinja's sandbox plus the resource limits above."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals["range"] = _budgeted_range
        self.globals.pop("lipsum", None)  # lipsum(n) writes n paragraphs: nothing a report needs
        self.filters = {name: _limited_filter(name, function) for name, function in self.filters.items()}
        self.filters["_exec_reports_budgeted_iteration"] = _budgeted_iteration
        self.filters["_exec_reports_bounded_text"] = _bounded_text

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        _BudgetedLoops(self).visit(source)
        return super()._generate(source, name, filename, defer_init=defer_init)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = current_budget()
        budget.tick()
        if isinstance(left, int) and isinstance(right, int):
            # The result is bounded, whatever the syntax: refused before computing when it is certain to be
            # too large (the least bits it can have), else computed from bounded operands and checked.
            if max(_int_bits(left), _int_bits(right)) > MAX_INT_BITS or _least_result_bits(operator, left, right) \
                    > MAX_INT_BITS:
                raise _too_large(operator, left, right)
        elif operator == "*":
            if isinstance(left, _SEQUENCES) and isinstance(right, int):
                budget.check_size(written_size(left, budget.max_bytes) * right, f"{short_repr(left)} * {right}")
            elif isinstance(right, _SEQUENCES) and isinstance(left, int):
                budget.check_size(written_size(right, budget.max_bytes) * left, f"{left} * {short_repr(right)}")
        elif operator == "+":
            if isinstance(left, str | bytes) and isinstance(right, str | bytes):
                budget.check_size(len(left) + len(right), "a joined value")
            elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
                # Building a list in a loop adds the smaller side each time: count what is added.
                smaller = min(left, right, key=len)
                budget.check_size(len(left) + len(right), "a joined list")
                budget.grow(written_size(smaller, budget.max_bytes), "the lists built by the template")
        elif operator == "%" and isinstance(left, str):
            check_percent_format(left, budget)
        result = self.binop_table[operator](left, right)
        if operator == "%" and isinstance(result, str):
            budget.check_size(len(result), "a formatted text")
        if isinstance(result, int) and _int_bits(result) > MAX_INT_BITS:
            raise _too_large(operator, left, right)
        return result

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in _STR_REFUSED:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        check_brace_format(value.__self__, current_budget())
        return wrapped

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's form
        budget = current_budget()
        budget.tick()
        owner = getattr(__obj, "__self__", None)
        method = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if method in _STR_GROWING and args and isinstance(args[0], int):
                budget.check_size(args[0], f"str.{method}()")
            elif method == "join" and args:
                items = list(args[0])
                size = sum(len(item) if isinstance(item, str) else 0 for item in items)
                budget.check_size(size + len(owner) * max(len(items) - 1, 0), "a joined text")
                args = (items, *args[1:])
            elif method == "replace" and len(args) >= 2:
                budget.check_size(_estimate_filter_output("replace", (owner, *args), {}), "str.replace()")
        elif isinstance(owner, list | dict | set) and method in _MUTATORS:
            added = sum(written_size(value, budget.max_bytes) for value in (*args, *kwargs.values()))
            budget.grow(added, "the lists built by the template")
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, _NESTED):
            budget.check_value_size(budget.value_size(result), f"the result of {method or 'a call'}()")
        elif isinstance(result, str | bytes):
            budget.check_size(len(result), f"the result of {method or 'a call'}()")
        if isinstance(owner, list | dict | set):  # list.extend, dict.update, ... grow the receiver
            budget.check_size(len(owner), f"a {type(owner).__name__}")
        return result

    @staticmethod
    def concat(chunks: Iterable[str]) -> str:
        """Joins the output of macros, call blocks and ``{% set %}`` blocks: checked before joining."""
        chunks = list(chunks)
        current_budget().check_size(sum(map(len, chunks)), "a block's output")
        return "".join(chunks)
