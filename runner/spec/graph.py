"""Dependency graphs: topological order and cycles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["find_cycle", "topological_order"]


def topological_order(deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Kahn's algorithm, stable in the mapping's order; None if there is a cycle."""
    remaining = {name: {d for d in ds if d in deps} for name, ds in deps.items()}
    dependents: dict[str, list[str]] = {name: [] for name in deps}
    for name, ds in remaining.items():
        for d in ds:
            dependents[d].append(name)
    position = {name: i for i, name in enumerate(deps)}
    ready = [name for name, ds in remaining.items() if not ds]
    order: list[str] = []
    while ready:
        ready.sort(key=position.__getitem__, reverse=True)
        name = ready.pop()
        order.append(name)
        for child in dependents[name]:
            remaining[child].discard(name)
            if not remaining[child]:
                ready.append(child)
    return order if len(order) == len(deps) else None


def find_cycle(deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One cycle as a list of names with the first repeated at the end, e.g. [a, b, a]."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(deps, WHITE)
    for start in deps:
        if colour[start] != WHITE:
            continue
        stack = [(start, iter(deps[start]))]
        path = [start]
        colour[start] = GREY
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in colour:
                    continue
                if colour[child] == GREY:
                    return path[path.index(child) :] + [child]
                if colour[child] == WHITE:
                    colour[child] = GREY
                    stack.append((child, iter(deps[child])))
                    path.append(child)
                    break
            else:
                colour[node] = BLACK
                stack.pop()
                path.pop()
    return None
