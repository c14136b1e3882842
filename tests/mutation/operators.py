"""The mutants of a Python module, made from its syntax tree (``make mutation``).

mutmut 3 mutates inside functions only (its trampolines switch a function's body), so a
pydantic model's ``Field(ge=1, le=96)``, a validator's decorator-bound class body or a
module constant such as ``RED_LINE_EPSILON`` — where most of the city file's red lines live —
is never mutated there. These operators reach them:

- comparisons at their boundary (``<`` and ``<=``, ``>`` and ``>=``), ``==``/``!=``,
  ``in``/``not in``, ``is``/``is not``; ``and``/``or``; ``not x`` and ``-x`` as ``x``;
  a condition that is no comparison negated;
- arithmetic, bitwise and augmented operators swapped (``+``/``-``, ``*``/``/``, ``//``
  and ``%`` as ``/``, ``<<``/``>>``, ``|``/``&``);
- numbers: an integer one up and one down, a float plus one and halved; ``True``/``False``;
  strings and bytes wrapped in ``XX`` (an f-string as a whole), human text aside;
- statements: a ``raise`` and a call statement (``found.append(Finding(...))``,
  ``mac.update(...)``) replaced by ``pass``, ``break`` and ``continue`` swapped;
- calls: ``min``/``max``, ``any``/``all``, ``ceil``/``floor``, Arrow's ``and_``/``or_`` and
  ``greater``/``greater_equal``, ``startswith``/``endswith``; ``abs(x)`` and ``invert(x)``
  as ``x``;
- pydantic: each bound of a ``Field(...)`` (``ge``, ``gt``, ``le``, ``lt``, ``min_length``,
  ``max_length``) removed, and ``ge``/``gt``, ``le``/``lt`` swapped — in annotations too
  (``Annotated[int, Field(ge=1)]``);
- collections: one element out of a module constant's list, tuple, set or dict, of the
  right side of an ``in``, of a ``for``'s iterable, of a list of ``*checks``.

Left alone: docstrings, annotations (but their ``Field``), decorators, ``assert``s (the
code's checks of itself), ``Literal[...]``, ``__slots__``, and human text: a ``Field``'s
``description``, a ``Finding``'s message and fix, an exception's message.

Each mutant is named by where it is and what it changes, not by its line — ``NoiseSettings.
_consistent: `self.budget < self.epsilon` → `self.budget <= self.epsilon``` — so a list of
equivalent mutants (``equivalent.toml``) survives edits elsewhere in the module; ``#2``,
``#3`` tell apart mutants of one scope that read the same.
"""

from __future__ import annotations

import ast
import copy
import functools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

_COMPARE: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_BINARY: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.Div,
    ast.Pow: ast.Mult,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
    ast.BitXor: ast.BitAnd,
}
_CALL_SWAPS = {
    "min": "max",
    "max": "min",
    "any": "all",
    "all": "any",
    "ceil": "floor",
    "floor": "ceil",
    "and_": "or_",
    "or_": "and_",
    "greater": "greater_equal",
    "greater_equal": "greater",
    "less": "less_equal",
    "less_equal": "less",
    "startswith": "endswith",
    "endswith": "startswith",
}
_UNWRAPPED = frozenset({"abs", "invert"})
_BOUNDS = ("ge", "gt", "le", "lt", "min_length", "max_length")
_BOUND_SWAPS = {"ge": "gt", "gt": "ge", "le": "lt", "lt": "le"}
_HUMAN_TEXT_KEYWORDS = frozenset({"description"})
_DISPLAYS = (ast.List, ast.Tuple, ast.Set, ast.Dict)


@dataclass(frozen=True)
class Mutant:
    """One change to a module: ``ident`` names it stably, ``line`` is where it starts,
    ``source`` the whole module with it."""

    ident: str
    line: int
    source: str


@dataclass(frozen=True)
class _Context:
    scope: str  # the qualified name of the definition or constant it is in
    text: bool = True  # strings may be mutated (not human text)
    annotation: bool = False  # inside an annotation: only a Field(...) is mutated
    collections: bool = False  # a display whose elements may be taken out one at a time


@dataclass(frozen=True)
class _Change:
    node: ast.AST  # what is replaced
    new: str  # its replacement's source
    before: str  # what the ident says was there
    after: str  # and what is there instead
    scope: str


def _name_of(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _src(node: ast.AST) -> str:
    return ast.unparse(node)


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[: limit // 2 - 1]}…{text[-limit // 2 :]}"


def _replaced(node: ast.AST, edit: Callable[[ast.AST], None]) -> ast.AST:
    new = copy.deepcopy(node)
    edit(new)
    return new


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


def _target_name(node: ast.stmt) -> str | None:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    for target in targets:
        if isinstance(target, ast.Name):
            return target.id
    return None


class _Finder:
    """Walks a module's tree with the context of each node; collects changes."""

    def __init__(self, include: tuple[str, ...] | None) -> None:
        self.include = include
        self.changes: list[_Change] = []
        self.parents: dict[ast.AST, ast.AST] = {}

    def wanted(self, scope: str) -> bool:
        return self.include is None or any(
            scope == name or scope.startswith(f"{name}.") for name in self.include
        )

    # --- statements ---------------------------------------------------------------------

    def body(self, statements: list[ast.stmt], scope: str, top: bool) -> None:
        for statement in statements:
            if _is_docstring(statement) or isinstance(
                statement, ast.Import | ast.ImportFrom | ast.Assert
            ):
                continue
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                inner = f"{scope}.{statement.name}" if scope else statement.name
                self.definition(statement, inner)
                continue
            name = _target_name(statement) if top else None
            if name == "__slots__":
                continue
            here = f"{scope}.{name}" if scope and name else name or scope or "<module>"
            self.statement(statement, _Context(here, collections=top and name is not None))

    def definition(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, scope: str
    ) -> None:
        if isinstance(node, ast.ClassDef):
            self.body(node.body, scope, top=True)
            return
        arguments = node.args
        for default in [*arguments.defaults, *(d for d in arguments.kw_defaults if d)]:
            self.expression(default, _Context(scope))
        self.body(node.body, scope, top=False)

    def statement(self, node: ast.stmt, ctx: _Context) -> None:
        if not self.wanted(ctx.scope):
            return
        self.statement_changes(node, ctx)
        for field, value in ast.iter_fields(node):
            children = value if isinstance(value, list) else [value]
            for child in children:
                if isinstance(child, ast.stmt):
                    self.body([child], ctx.scope, top=False)
                elif isinstance(child, ast.expr):
                    inner = _inner(node, field, ctx)
                    if inner is not None:
                        self.expression(child, inner)
                elif isinstance(child, ast.ExceptHandler):
                    self.body(child.body, ctx.scope, top=False)
                elif isinstance(child, ast.AST):
                    for grandchild in ast.iter_child_nodes(child):
                        if isinstance(grandchild, ast.expr):
                            self.expression(grandchild, ctx)

    def statement_changes(self, node: ast.stmt, ctx: _Context) -> None:
        if isinstance(node, ast.Raise) or (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
        ):
            self.add(node, "pass", _short(_src(node), 70), "pass", ctx)
        elif isinstance(node, ast.Break):
            self.add(node, "continue", "break", "continue", ctx)
        elif isinstance(node, ast.Continue):
            self.add(node, "break", "continue", "break", ctx)
        elif isinstance(node, ast.AugAssign) and type(node.op) in _BINARY:
            swapped = type(node.op)

            def edit(new: ast.AST) -> None:
                assert isinstance(new, ast.AugAssign)
                new.op = _BINARY[swapped]()

            self.add_edit(node, edit, ctx, statement=True)
        elif isinstance(node, ast.If | ast.While):
            self.negation(node.test, ctx)

    # --- expressions --------------------------------------------------------------------

    def expression(self, node: ast.expr, ctx: _Context) -> None:
        if isinstance(node, ast.Call) and _name_of(node) == "Field":
            ctx = _Context(ctx.scope, ctx.text)  # a Field's bounds, even in an annotation
            self.field_bounds(node, ctx)
        elif ctx.annotation:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expression(child, ctx)
            return
        if isinstance(node, ast.Subscript) and _src(node.value) == "Literal":
            return
        if isinstance(node, ast.JoinedStr):
            if ctx.text:
                self.joined(node, ctx)
            return
        self.expression_changes(node, ctx)
        self.children(node, ctx)

    def children(self, node: ast.expr, ctx: _Context) -> None:
        for field, value in ast.iter_fields(node):
            children = value if isinstance(value, list) else [value]
            for index, child in enumerate(children):
                if isinstance(child, ast.keyword):
                    if child.arg in _HUMAN_TEXT_KEYWORDS:
                        continue
                    self.expression(child.value, _Context(ctx.scope, ctx.text))
                elif isinstance(child, ast.comprehension):
                    self.expression(child.iter, _Context(ctx.scope, ctx.text))
                    for condition in child.ifs:
                        self.expression(condition, _Context(ctx.scope, ctx.text))
                elif isinstance(child, ast.expr):
                    text = ctx.text
                    if isinstance(node, ast.Call) and field == "args":
                        human = _name_of(node) == "Finding" and index >= 1
                        text = text and not human
                    collections = ctx.collections and isinstance(
                        node, ast.List | ast.Tuple | ast.Set | ast.Dict
                    )
                    if isinstance(node, ast.Compare) and field == "comparators":
                        collections = isinstance(node.ops[index], ast.In | ast.NotIn)
                    self.expression(child, _Context(ctx.scope, text, collections=collections))

    def expression_changes(self, node: ast.expr, ctx: _Context) -> None:
        if isinstance(node, ast.Compare):
            self.compare(node, ctx)
        elif isinstance(node, ast.BoolOp):
            other = ast.Or if isinstance(node.op, ast.And) else ast.And
            self.add_edit(node, lambda new: setattr(new, "op", other()), ctx)
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            swapped = _BINARY[type(node.op)]
            self.add_edit(node, lambda new: setattr(new, "op", swapped()), ctx)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
            self.add(node, _src(node.operand), _src(node), _src(node.operand), ctx, paren=True)
        elif isinstance(node, ast.IfExp):
            self.negation(node.test, ctx)
        elif isinstance(node, ast.Constant):
            self.constant(node, ctx)
        elif isinstance(node, ast.Call):
            self.call(node, ctx)
        checks = isinstance(node, ast.List) and any(isinstance(e, ast.Starred) for e in node.elts)
        if checks or (ctx.collections and isinstance(node, _DISPLAYS)):
            self.elements(node, ctx)  # type: ignore[arg-type]

    def compare(self, node: ast.Compare, ctx: _Context) -> None:
        for index, op in enumerate(node.ops):
            if type(op) not in _COMPARE:
                continue
            swapped = _COMPARE[type(op)]

            def edit(new: ast.AST, index: int = index, swapped: type = swapped) -> None:
                assert isinstance(new, ast.Compare)
                new.ops[index] = swapped()

            self.add_edit(node, edit, ctx)

    def negation(self, test: ast.expr, ctx: _Context) -> None:
        if isinstance(test, ast.Compare | ast.BoolOp | ast.Constant) or (
            isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
        ):
            return
        self.add(test, f"not ({_src(test)})", _src(test), f"not {_src(test)}", ctx, paren=True)

    def constant(self, node: ast.Constant, ctx: _Context) -> None:
        value = node.value
        parent = self.parents.get(node)
        if isinstance(value, bool):
            self.add(node, repr(not value), repr(value), repr(not value), ctx, paren=True)
            return
        news: list[object] = []
        if isinstance(value, int):
            news = [value + 1, value - 1]
        elif isinstance(value, float):
            news = [value + 1, value / 2] if value else [1.0]
        elif isinstance(value, str) and ctx.text:
            news = [f"XX{value}XX"]
        elif isinstance(value, bytes) and ctx.text:
            news = [b"XX" + value + b"XX"]
        if isinstance(parent, ast.Slice):
            parent = self.parents.get(parent)
        if isinstance(parent, ast.arguments) or (
            isinstance(parent, ast.stmt)
            and not isinstance(parent, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Return)
        ):
            parent = None
        for new in news:
            after = repr(new)
            before_text, after_text = repr(value), after
            if parent is not None:
                whole = _src(parent)
                shown = _replaced(
                    parent, functools.partial(_set_constant, original=node, value=new)
                )
                if len(whole) <= 90:
                    before_text, after_text = whole, _src(shown)
            self.add(node, after, before_text, after_text, ctx, paren=True)

    def joined(self, node: ast.JoinedStr, ctx: _Context) -> None:
        def edit(new: ast.AST) -> None:
            assert isinstance(new, ast.JoinedStr)
            new.values.insert(0, ast.Constant("XX"))
            new.values.append(ast.Constant("XX"))

        mutated = _replaced(node, edit)
        self.add(node, _src(mutated), _short(_src(node), 60), "XX…XX", ctx, paren=True)

    def call(self, node: ast.Call, ctx: _Context) -> None:
        name = _name_of(node)
        if name in _CALL_SWAPS:
            swap = _CALL_SWAPS[name]

            def edit(new: ast.AST) -> None:
                assert isinstance(new, ast.Call)
                if isinstance(new.func, ast.Name):
                    new.func.id = swap
                elif isinstance(new.func, ast.Attribute):
                    new.func.attr = swap

            self.add_edit(node, edit, ctx)
        if name in _UNWRAPPED and len(node.args) == 1 and not node.keywords:
            self.add(node, _src(node.args[0]), _src(node), _src(node.args[0]), ctx, paren=True)

    def field_bounds(self, node: ast.Call, ctx: _Context) -> None:
        for index, keyword in enumerate(node.keywords):
            if keyword.arg not in _BOUNDS:
                continue

            def drop(new: ast.AST, index: int = index) -> None:
                assert isinstance(new, ast.Call)
                del new.keywords[index]

            self.add_edit(node, drop, ctx, before=_src(keyword), after="removed")
            if keyword.arg in _BOUND_SWAPS:
                swap = _BOUND_SWAPS[keyword.arg]

                def swapped(new: ast.AST, index: int = index, swap: str = swap) -> None:
                    assert isinstance(new, ast.Call)
                    new.keywords[index].arg = swap

                shown = f"{swap}={_src(keyword.value)}"
                self.add_edit(node, swapped, ctx, after=shown, before=_src(keyword))

    def elements(self, node: ast.List | ast.Tuple | ast.Set | ast.Dict, ctx: _Context) -> None:
        count = len(node.keys) if isinstance(node, ast.Dict) else len(node.elts)
        if count < 2:
            return
        for index in range(count):

            def drop(new: ast.AST, index: int = index) -> None:
                if isinstance(new, ast.Dict):
                    del new.keys[index]
                    del new.values[index]
                else:
                    assert isinstance(new, ast.List | ast.Tuple | ast.Set)
                    del new.elts[index]

            if isinstance(node, ast.Dict):
                key = node.keys[index]
                gone = f"{_src(key)}: …" if key is not None else "**…"
            else:
                gone = _src(node.elts[index])
            self.add_edit(node, drop, ctx, after=f"without {_short(gone, 50)}")

    # --- recording ----------------------------------------------------------------------

    def add_edit(
        self,
        node: ast.AST,
        edit: Callable[[ast.AST], None],
        ctx: _Context,
        *,
        statement: bool = False,
        after: str | None = None,
        before: str | None = None,
    ) -> None:
        mutated = _replaced(node, edit)
        new = _src(mutated)
        if new == _src(node):
            return
        self.add(
            node,
            new,
            before or _short(_src(node)),
            after or _short(new),
            ctx,
            paren=not statement,
        )

    def add(
        self,
        node: ast.AST,
        new: str,
        before: str,
        after: str,
        ctx: _Context,
        *,
        paren: bool = False,
    ) -> None:
        if not self.wanted(ctx.scope):
            return
        self.changes.append(_Change(node, f"({new})" if paren else new, before, after, ctx.scope))


def _inner(node: ast.stmt, field: str, ctx: _Context) -> _Context | None:
    """The context of a statement's expression in ``field``; None: left alone (targets)."""
    if field in ("target", "targets"):
        return None
    if field == "annotation":
        return _Context(ctx.scope, annotation=True)
    if isinstance(node, ast.Raise):
        return _Context(ctx.scope, text=False)
    if isinstance(node, ast.For) and field == "iter":
        return _Context(ctx.scope, collections=True)
    return ctx


def _set_constant(parent: ast.AST, original: ast.Constant, value: Any) -> None:
    """In a copy of ``parent``, the constant at ``original``'s place set to ``value``."""
    for node in ast.walk(parent):
        if (
            isinstance(node, ast.Constant)
            and getattr(node, "lineno", None) == original.lineno
            and getattr(node, "col_offset", None) == original.col_offset
        ):
            node.value = value
            return


def _span(lines: list[int], node: ast.AST) -> tuple[int, int]:
    start = lines[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
    end = lines[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
    return start, end


def mutants(source: str, include: tuple[str, ...] | None = None) -> list[Mutant]:
    """Every mutant of a module's source, in source order. ``include``: the top-level
    names (``NoiseSettings``, ``City.key_retention_days``) whose code is mutated; all by
    default."""
    tree = ast.parse(source)
    finder = _Finder(include)
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            finder.parents[child] = parent
    finder.body(tree.body, "", top=True)
    data = source.encode()
    lines = [0]
    for line in data.splitlines(keepends=True):
        lines.append(lines[-1] + len(line))
    seen: Counter[str] = Counter()
    out: list[tuple[int, int, Mutant]] = []
    original = ast.dump(tree)
    for change in finder.changes:
        start, end = _span(lines, change.node)
        text = (data[:start] + change.new.encode() + data[end:]).decode()
        try:
            mutated = ast.parse(text)
        except SyntaxError:
            continue
        if ast.dump(mutated) == original:
            continue
        ident = f"{change.scope}: `{change.before}` → `{change.after}`"
        seen[ident] += 1
        if seen[ident] > 1:
            ident = f"{ident} #{seen[ident]}"
        line = change.node.lineno  # type: ignore[attr-defined]
        out.append((start, end, Mutant(ident, line, text)))
    return [m for *_, m in sorted(out, key=lambda item: (item[0], item[1]))]


def scopes(source: str) -> Iterator[str]:
    """The top-level names of a module (for checking a module's ``include``)."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.name
            if isinstance(node, ast.ClassDef):
                for inner in node.body:
                    name = (
                        inner.name
                        if isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef)
                        else _target_name(inner)
                    )
                    if name:
                        yield f"{node.name}.{name}"
        elif (name := _target_name(node)) is not None:
            yield name
