"""No import cycles between the top-level modules of each Rust crate.

A module's dependencies are the `crate::NAME` paths in its non-test code
(comments dropped; `tests`/`flows` files and `#[cfg(test)]` tails skipped).
ARCHITECTURE.md promises this; this test keeps it true.
"""

import os
import re
import unittest

ROOT = os.path.join(os.path.dirname(__file__), "..")
CRATES = ["crates/tvm-core/src", "crates/tvm-lambda/src", "crates/tvm-cli/src"]


def graph(src):
    deps = {}
    for folder, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(folder, f), src)
            if "tests" in rel or "flows" in rel:
                continue
            top = rel.split(os.sep)[0].removesuffix(".rs")
            if top in ("lib", "main"):
                continue
            with open(os.path.join(folder, f)) as fh:
                text = re.sub(r"//[^\n]*", "", fh.read())
            text = text.split("#[cfg(test)]")[0]
            for name in re.findall(r"crate::(\w+)", text):
                if name != top:
                    deps.setdefault(top, set()).add(name)
    return deps


def cycle(deps):
    """One cycle as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(deps.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(deps):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


class ModuleCycles(unittest.TestCase):
    def test_no_crate_has_an_import_cycle(self):
        for crate in CRATES:
            with self.subTest(crate=crate):
                self.assertIsNone(cycle(graph(os.path.join(ROOT, crate))))

    def test_a_cycle_is_found_when_there_is_one(self):
        self.assertEqual(cycle({"a": {"b"}, "b": {"a"}}), ["a", "b", "a"])
        self.assertIsNone(cycle({"a": {"b"}, "b": {"c"}}))


if __name__ == "__main__":
    unittest.main()
