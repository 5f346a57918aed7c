"""Flamegraph trees with a node budget: the merged call tree of a selection as the UI draws
it, cut to its heaviest nodes, and the subtree under a path for exact zoom.  Pure: no I/O.

A node of the drawn tree is a stack of frame identities (name, package) from the root, so
the call-tree paths (`PathTotal`, which also tell addresses apart) that share that stack
merge into one node, as d3-flame-graph merges the answer's samples.  `truncate` keeps the
heaviest nodes by total samples (each only with its ancestors) and folds the other
children of each kept parent into one `[other]` child whose samples, occurrences and
duration are the sums of the children it replaces and whose self time is the self time of
everything below them; so every kept node's total, and the root's, stays exact.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence

import msgspec

from profd.store.records import PathTotal

OTHER = "[other]"
DEFAULT_MAX_NODES = 8192
MIN_MAX_NODES = 16
MAX_MAX_NODES = 100_000

Identity = tuple[str, str]  # (name, package)


class Node(msgspec.Struct):
    name: str
    package: str
    in_app: bool = False
    occurrences: int = 0
    samples: int = 0
    duration_ns: int = 0
    self_time_ns: int = 0
    # The call-tree paths merged here (their per-profile durations give percentiles);
    # none for an `[other]` node.
    paths: list[int] = msgspec.field(default_factory=list)
    children: dict[tuple[str, str, bool], Node] = msgspec.field(default_factory=dict)
    other: bool = False

    @property
    def key(self) -> tuple[str, str, bool]:
        return (self.name, self.package, self.other)


def build(paths: Mapping[int, PathTotal]) -> Node:
    """The drawn tree of the paths, under a synthetic root holding the totals of its children
    (a path whose parent is not among the paths starts at the root)."""
    root = Node(name="", package="")
    placed: dict[int, Node] = {}

    def place(path: int) -> Node:
        chain: list[PathTotal] = []
        cursor: int | None = path
        seen: set[int] = set()
        parent = root
        while cursor:
            if cursor in placed:
                parent = placed[cursor]
                break
            row = paths.get(cursor)
            if row is None or cursor in seen:
                break
            seen.add(cursor)
            chain.append(row)
            cursor = row.parent
        for row in reversed(chain):
            key = (row.name, row.package, False)
            node = parent.children.get(key)
            if node is None:
                node = parent.children[key] = Node(name=row.name, package=row.package, in_app=row.in_app)
            node.occurrences += row.occurrences
            node.samples += row.samples
            node.duration_ns += row.duration_ns
            node.self_time_ns += row.self_time_ns
            node.paths.append(row.path)
            placed[row.path] = node
            parent = node
        return parent

    for path in paths:
        if path not in placed:
            place(path)
    for child in root.children.values():
        root.samples += child.samples
        root.duration_ns += child.duration_ns
        root.self_time_ns += child.self_time_ns
    return root


def size(node: Node) -> int:
    """Nodes below `node` (itself not counted)."""
    total, stack = 0, [node]
    while stack:
        current = stack.pop()
        total += len(current.children)
        stack.extend(current.children.values())
    return total


def walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(current.children.values())))


def find(root: Node, identities: Sequence[Identity]) -> list[Node] | None:
    """The nodes along a stack of (name, package) from the root, or None when it is not in
    the tree."""
    chain, node = [], root
    for name, package in identities:
        found = node.children.get((name, package, False))
        if found is None:
            return None
        chain.append(found)
        node = found
    return chain


def _subtree_self(node: Node) -> int:
    return sum(n.self_time_ns for n in walk(node))


def truncate(root: Node, max_nodes: int) -> Node:
    """A copy of the tree below `root` with at most `max_nodes` nodes (the root not counted):
    the heaviest nodes by samples, each with its ancestors, and one `[other]` child per kept
    node whose children were not all kept.  `root` itself is returned when it fits."""
    if size(root) <= max_nodes:
        return root
    kept: set[int] = {id(root)}
    pending: dict[int, int] = {id(root): len(root.children)}  # children not kept yet
    others = 1 if root.children else 0
    used = others
    order = 0
    frontier: list[tuple[int, int, Node, Node]] = []
    for child in root.children.values():
        heapq.heappush(frontier, (-child.samples, order, child, root))
        order += 1
    while frontier:
        _, _, node, parent = frontier[0]
        cost = 1 + (1 if node.children else 0) - (1 if pending[id(parent)] == 1 else 0)
        if used + cost > max_nodes:
            break
        heapq.heappop(frontier)
        used += cost
        kept.add(id(node))
        pending[id(parent)] -= 1
        pending[id(node)] = len(node.children)
        for child in node.children.values():
            heapq.heappush(frontier, (-child.samples, order, child, node))
            order += 1

    result = msgspec.structs.replace(root, children={})
    stack = [(root, result)]
    while stack:
        node, copied = stack.pop()
        other = Node(name=OTHER, package="", other=True)
        for key, child in node.children.items():
            if id(child) in kept:
                copied.children[key] = msgspec.structs.replace(child, children={})
                stack.append((child, copied.children[key]))
            else:
                other.occurrences += child.occurrences
                other.samples += child.samples
                other.duration_ns += child.duration_ns
                other.self_time_ns += _subtree_self(child)
        if len(copied.children) < len(node.children):
            copied.children[other.key] = other
    return result
