"""Anchors (``&name``) and aliases (``*name``) in the YAML file, which a hand edit can bring in.

Aliases are the same node objects as their anchors, so these questions are answered on the
composed nodes, before anything is expanded into Python values.
"""
from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple

import yaml


def expands_past(node: yaml.Node, limit: int) -> bool:
    """Whether the aliases in ``node`` expand it past ``limit`` values (an alias bomb: a
    kilobyte of nested anchors that would expand to billions), told before it is expanded."""
    sizes: Dict[int, int] = {}  # expanded size of each node, shared nodes counted once each
    stack: List[Tuple[yaml.Node, Optional[List[yaml.Node]]]] = [(node, None)]
    while stack:
        current, children = stack.pop()
        if id(current) in sizes:
            continue
        if children is None:  # first visit: size the children first
            children = _children(current)
            stack.append((current, children))
            stack.extend((child, None) for child in children if id(child) not in sizes)
            continue
        sizes[id(current)] = 1 + sum(sizes.get(id(child), 0) for child in children)
        if sizes[id(current)] > limit:
            return True
    return False


def _children(node: yaml.Node) -> List[yaml.Node]:
    """The nodes directly inside ``node`` (a mapping's keys and values, a sequence's items)."""
    if isinstance(node, yaml.MappingNode):
        return [inner for pair in node.value for inner in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def shares_nodes(raw: bytes, starts: List[int], pairs: List[Tuple[yaml.Node, yaml.Node]]) -> bool:
    """Whether an entry uses an anchor defined in another (then it cannot be spliced alone).

    Anchors are set on nodes (a run's name or any part of its entry) and aliases are the
    same node objects, so an entry shares a node with another exactly when they share one.
    """
    ends = starts[1:] + [len(raw)]
    owner: Dict[int, int] = {}
    for i, pair in enumerate(pairs):
        if b"&" in raw[starts[i] : ends[i]]:
            for node in pair:
                for node_id in _node_ids(node):
                    owner[node_id] = i
    if not owner:
        return False
    for i, pair in enumerate(pairs):
        if b"*" in raw[starts[i] : ends[i]]:
            if any(owner.get(node_id, i) != i for node in pair for node_id in _node_ids(node)):
                return True
    return False


def _node_ids(node: yaml.Node) -> Iterator[int]:
    stack, seen = [node], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield id(current)
        stack.extend(_children(current))
