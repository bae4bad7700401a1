"""What the catalogue's translations to other engines (Spark, PostgreSQL) share: sqlglot rewriting."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp


def rewrite_bottom_up(tree: exp.Expr, rewrite: Callable[[exp.Expr], exp.Expr]) -> exp.Expr:
    """`tree` with every node replaced by ``rewrite(node)``, children before their parents (so a rewrite
    sees its arguments already translated); returns the new root."""
    for node in reversed(list(tree.walk(bfs=False))):
        new = rewrite(node)
        if new is not node:
            if node is tree:
                tree = new
            else:
                node.replace(new)
    return tree
