"""Which context values a channel's templates only ever copy into the text (issue 18: a message rendered once per
kind of message, its per-message values filled in).

A message's text depends on few values: the trade's words, the peer, the offers, the sender, and per message only
its links and the business's commune. `holes_plan` reads every template one channel's render may reach (the
channel's folder and the shared parts, names starting with "_") and answers:

- `paths`: every context path any of them reads (``("business", "family")``, ``("offers",)``): the key of a kind
  of message. Reading more than needed only makes more kinds; every read is there.
- `holes`: the paths whose value is only ever copied (``links.landing``, ``business.commune``): written out bare or
  through filters that copy a plain value unchanged (`TRANSPARENT`), and everything made of them (a section, a
  block) only ever copied, trimmed, escaped or turned into e-mail HTML, never measured, compared, cut or tested.
  Such a value can be swapped for a marker in one render, and the real value put in place of the marker after:
  the text is the one a render with the real value gives (`templates.render` also checks it on the first message
  of each kind, and only for values of a plain shape, `render.plain_hole`).

None when the templates do something the analysis does not follow (an import whose name is not a shared part, a
method changing a value that is not the template's own): every message is then rendered in full.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import jinja2
from jinja2 import nodes

# Candidate holes: the values that differ from one message to the next (a whole mapping: every key of it).
CANDIDATES: tuple[tuple[str, ...], ...] = (("links",), ("business", "commune"))
# Filters that give a plain value (letters, or a URL without & < > " ') back unchanged, and so commute with the
# marker swap on text made of such values.
TRANSPARENT = frozenset({"trim", "e", "escape", "email_html", "string", "capfirst", "oneline"})
# Tests whose answer is the same for a marker and a plain value (both defined, both non-empty strings).
SAME_ANSWER_TESTS = frozenset({"defined", "undefined", "none", "string"})
_MUTATORS = frozenset({"append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault", "popitem",
                       "sort", "reverse", "add", "discard"})
_IMPLICIT = frozenset({"self", "caller", "loop", "varargs", "kwargs", "super"})


@dataclass(frozen=True)
class HolesPlan:
    """What `holes_plan` found for one channel."""

    paths: tuple[tuple[str, ...], ...]  # every context path read (the holes left out)
    holes: tuple[tuple[str, ...], ...]  # paths only ever copied: a mapping's whole (links) or one value


class _Unfollowed(Exception):
    """A construct the analysis does not follow: no plan."""


def _chain(node: nodes.Node) -> tuple[nodes.Node, list[str | None]]:
    """The innermost node of a Getattr/Getitem chain and its constant steps (None for a computed one)."""
    steps: list[str | None] = []
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        step = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        steps.insert(0, step if isinstance(step, str) else None)
        node = node.node
    return node, steps


def _parents(tree: nodes.Node) -> dict[int, nodes.Node]:
    found: dict[int, nodes.Node] = {}
    for parent in [tree, *tree.find_all(nodes.Node)]:
        for child in parent.iter_child_nodes():
            found[id(child)] = parent
    return found


def _import_targets(tree: nodes.Node) -> Iterable[nodes.Node]:
    for node in tree.find_all((nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)):
        yield node.template


def _followed_target(expr: nodes.Node, names: set[str]) -> bool:
    # A constant name among the analysed templates, or a computed one that starts with a constant "_" (a shared
    # part: `"_text/" ~ self.trigger_key() ~ ".j2"`), all of which are analysed.
    if isinstance(expr, nodes.Const):
        return expr.value in names
    while isinstance(expr, nodes.Concat | nodes.Add):
        expr = expr.nodes[0] if isinstance(expr, nodes.Concat) else expr.left
    return isinstance(expr, nodes.Const) and isinstance(expr.value, str) and expr.value.startswith("_")


def holes_plan(env: jinja2.Environment, names: Iterable[str]) -> HolesPlan | None:
    """The plan of the templates `names` (a channel's and the shared parts; see the module docstring)."""
    names = list(names)
    trees = [env.parse(env.loader.get_source(env, name)[0]) for name in names]  # type: ignore[union-attr]
    try:
        return _plan(env, trees, set(names))
    except _Unfollowed:
        return None


def _plan(env: jinja2.Environment, trees: list[nodes.Template], names: set[str]) -> HolesPlan:
    paths: set[tuple[str, ...]] = set()
    whole_reads: set[str] = set()  # context names read whole somewhere (passed on, a method called on them)
    locals_: set[str] = set()  # names a template sets, loops over, or takes as a macro parameter
    macros: dict[str, list[nodes.Macro]] = {}
    for tree in trees:
        for macro in tree.find_all(nodes.Macro):
            macros.setdefault(macro.name, []).append(macro)
    for tree in trees:
        for target in _import_targets(tree):
            if not _followed_target(target, names):
                raise _Unfollowed
        locals_ |= {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
        locals_ |= {i.target for i in tree.find_all(nodes.Import)}
        for imported in tree.find_all(nodes.FromImport):
            locals_ |= {n if isinstance(n, str) else n[-1] for n in imported.names}
        parents = _parents(tree)
        for name in tree.find_all(nodes.Name):
            if name.ctx != "load" or name.name in _IMPLICIT or name.name in env.globals or name.name in macros:
                continue
            top, steps = name, []
            while isinstance(parent := parents.get(id(top)), nodes.Getattr | nodes.Getitem) and parent.node is top:
                top = parent
            _, steps = _chain(top)
            known = []
            for step in steps:
                if step is None:
                    break
                known.append(step)
            method = isinstance(parents.get(id(top)), nodes.Call) and parents[id(top)].node is top
            if method and known:
                if known[-1] in _MUTATORS and name.name not in locals_:
                    raise _Unfollowed  # it changes a context value: that must happen at every message
                known.pop()
            paths.add((name.name, *known))
            if not known:
                whole_reads.add(name.name)
    found = [c for c in CANDIDATES if c[0] not in whole_reads and _only_copied(env, trees, c, macros)]
    holes = sorted(p for p in paths for c in found if (len(c) == 1 and len(p) == 2 and p[0] == c[0]) or p == c)
    kept = {p for p in paths if not any(p[:len(c)] == c for c in found)}
    # A path under one read whole adds nothing to the key (`ambassador.name` when `ambassador` is there).
    kept = tuple(sorted(p for p in kept if not any(p[:i] in kept for i in range(1, len(p)))))
    return HolesPlan(paths=kept, holes=tuple(holes))


def _is_hole(node: nodes.Node, hole: tuple[str, ...]) -> bool:
    """Whether `node` reads the hole: ``links.<key>`` for the whole mapping `links`, else exactly its path."""
    if not isinstance(node, nodes.Getattr | nodes.Getitem):
        return False
    inner, steps = _chain(node)
    if not isinstance(inner, nodes.Name) or inner.ctx != "load" or inner.name != hole[0] or None in steps:
        return False
    return len(steps) == 1 if len(hole) == 1 else tuple(steps) == hole[1:]


def _only_copied(env: jinja2.Environment, trees: list[nodes.Template], hole: tuple[str, ...],
                 macros: dict[str, list[nodes.Macro]]) -> bool:
    """Whether the value at `hole` (and everything made of it) is only ever copied into the output."""
    tainted_locals: set[str] = set()
    tainted_params: set[str] = set()
    texts: set[str] = set()  # blocks and macros (by name, in any template) whose text may hold the value
    blocks = [b for tree in trees for b in tree.find_all(nodes.Block)]
    known = set(macros) | {b.name for b in blocks}
    aliases = {i.target for tree in trees for i in tree.find_all(nodes.Import)}

    def carries(node: nodes.Node) -> bool:
        if _is_hole(node, hole):
            return True
        if isinstance(node, nodes.Name):
            return node.ctx == "load" and (node.name in tainted_locals or node.name in tainted_params)
        if isinstance(node, nodes.Call):
            callee = node.node
            args = [*node.args, *(k.value for k in node.kwargs)]
            if node.dyn_args is not None or node.dyn_kwargs is not None:
                return True
            if isinstance(callee, nodes.Name) and callee.name in env.globals:
                return any(carries(a) for a in args)
            if isinstance(callee, nodes.Getattr) and isinstance(callee.node, nodes.Name) and (
                    callee.node.name == "self" or callee.node.name in aliases):
                name = callee.attr  # a block (self.<name>) or a macro of an imported template
            elif isinstance(callee, nodes.Name) and callee.name in macros:
                name = callee.name
            elif isinstance(callee, nodes.Getattr):  # a method of a value: what it gives is made of the value
                return carries(callee.node) or any(carries(a) for a in args)
            else:
                return True  # caller(), super(), anything else
            return name in texts or name not in known or any(carries(a) for a in args)
        if isinstance(node, nodes.Filter | nodes.Test) and node.node is None:
            return True
        return any(carries(child) for child in node.iter_child_nodes())

    def writes(body: nodes.Node) -> bool:  # its text may hold the value
        if body.find(nodes.CallBlock) is not None or body.find(nodes.Include) is not None:
            return True
        return any(carries(child) for out in body.find_all(nodes.Output) for child in out.nodes)

    changed = True
    while changed:  # locals, macro parameters and texts that hold the value, until nothing more does
        changed = False

        def taint(names: set[str], name: str) -> None:
            nonlocal changed
            if name not in names:
                names.add(name)
                changed = True

        for tree in trees:
            for node in tree.find_all((nodes.Assign, nodes.For, nodes.AssignBlock, nodes.Call)):
                if isinstance(node, nodes.Assign | nodes.For):
                    if carries(node.node if isinstance(node, nodes.Assign) else node.iter):
                        for name in [node.target, *node.target.find_all(nodes.Name)]:
                            if isinstance(name, nodes.Name):
                                taint(tainted_locals, name.name)
                elif isinstance(node, nodes.AssignBlock):
                    if writes(node):
                        taint(tainted_locals, node.target.name)
                else:
                    callee = node.node
                    name = callee.attr if isinstance(callee, nodes.Getattr) else getattr(callee, "name", None)
                    if name in macros and any(carries(a) for a in [*node.args, *(k.value for k in node.kwargs)]):
                        for macro in macros[name]:
                            for arg in macro.args:
                                taint(tainted_params, arg.name)
        for name, defined in macros.items():
            if any(writes(m) for m in defined):
                taint(texts, name)
        for block in blocks:
            if writes(block):
                taint(texts, block.name)

    for tree in trees:
        for node in tree.find_all(nodes.Node):
            if isinstance(node, nodes.Filter):
                operands = [node.node, *node.args, *(k.value for k in node.kwargs)] if node.node is not None else []
                if node.name not in TRANSPARENT and (node.node is None or any(carries(o) for o in operands)):
                    return False
                if node.name in TRANSPARENT and any(carries(o) for o in [*node.args, *(k.value for k in node.kwargs)]):
                    return False
            elif isinstance(node, nodes.FilterBlock):
                if node.filter.name not in TRANSPARENT:
                    return False
            elif isinstance(node, nodes.Test):
                if node.name not in SAME_ANSWER_TESTS and carries(node.node):
                    return False
            elif isinstance(node, nodes.Compare | nodes.Slice | nodes.Mul | nodes.Div | nodes.FloorDiv | nodes.Mod
                            | nodes.Pow | nodes.Sub | nodes.Neg | nodes.Pos):
                if any(carries(child) for child in node.iter_child_nodes()):
                    return False
            elif isinstance(node, nodes.For):
                if carries(node.iter):
                    return False
            elif isinstance(node, nodes.Getattr | nodes.Getitem):
                if carries(node.node) and not _is_hole(node, hole):
                    return False  # a method or an item of a text made of the value
            elif isinstance(node, nodes.Call):
                callee = node.node
                to_macro = (isinstance(callee, nodes.Name) and callee.name in macros) or (
                    isinstance(callee, nodes.Getattr) and isinstance(callee.node, nodes.Name)
                    and (callee.node.name == "self" or callee.node.name in aliases) and callee.attr in known)
                if not to_macro and any(carries(a) for a in [*node.args, *(k.value for k in node.kwargs)]):
                    return False  # a helper, a method or caller() given the value: its answer may depend on it
                if isinstance(callee, nodes.Getattr) and callee.attr not in macros and carries(callee.node):
                    return False
    return True
