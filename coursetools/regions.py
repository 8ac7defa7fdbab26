"""The solution regions: one parser of the markers, the stubs that replace them, and the mapping
from a region to the function that holds it. The release builder, the grader, the hand-in and the
tests all use this module, so a marker means the same thing everywhere.

* A region is the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (markers included)
  in a code cell or a helper file. In the student release a code region becomes
  :data:`CODE_STUB` and a ``raise NotImplementedError`` naming the file, function and part.
* A written answer is a markdown cell tagged :data:`ANSWER_TAG` (as nbgrader marks markdown
  answers by cell metadata, so no marker renders as a heading in JupyterLab): the whole cell is the
  answer, and the student release shows :data:`ANSWER_STUB` in its place.
"""

from __future__ import annotations

import ast

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CODE_STUB = "# YOUR CODE HERE"
ANSWER_STUB = "YOUR ANSWER HERE"
ANSWER_TAG = "answer"  # markdown cell tag: the cell is the student's written answer
SOLUTIONS_ONLY = "solutions-only"  # cell tag: the cell is left out of the student release


class RegionError(ValueError):
    """A solution region is malformed; the message names the file and cell or line."""


def find_regions(lines: list[str], where: str) -> list[tuple[int, int]]:
    """``(begin, end)`` line indices of every region in ``lines``; raises RegionError if malformed
    (BEGIN without END, END without BEGIN, nested)."""
    regions, begin = [], None
    for index, line in enumerate(lines):
        marker = line.strip()
        if marker == BEGIN:
            if begin is not None:
                raise RegionError(f"{where}: nested {BEGIN} at line {index + 1} (the region opened at line "
                                  f"{begin + 1} is not closed)")
            begin = index
        elif marker == END:
            if begin is None:
                raise RegionError(f"{where}: {END} at line {index + 1} without {BEGIN}")
            regions.append((begin, index))
            begin = None
    if begin is not None:
        raise RegionError(f"{where}: {BEGIN} at line {begin + 1} without {END}")
    return regions


def is_answer_cell(cell) -> bool:
    """A markdown cell that holds a written answer (tagged :data:`ANSWER_TAG`)."""
    return cell.get("cell_type") == "markdown" and ANSWER_TAG in cell.get("metadata", {}).get("tags", [])


def strip_markers(text: str) -> str:
    """``text`` without its ``### BEGIN/END SOLUTION`` lines (what the solutions release shows)."""
    return "".join(line for line in text.splitlines(keepends=True) if line.strip() not in (BEGIN, END))


def code_stub(indent: str, message: str) -> list[str]:
    """The two lines that stand in a code region's place."""
    message = message.replace('"', "'")
    return [f"{indent}{CODE_STUB}", f'{indent}raise NotImplementedError("{message}")']


def is_code_stub(lines: list[str], index: int) -> bool:
    return (lines[index].strip() == CODE_STUB and index + 1 < len(lines)
            and lines[index + 1].strip().startswith("raise NotImplementedError("))


# ---------------------------------------------------------------- regions and functions
def function_nodes(tree: ast.Module) -> dict[str, ast.AST]:
    """Top-level functions and classes, and the methods of top-level classes, by qualified name."""
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] = node
            if isinstance(node, ast.ClassDef):
                for child in node.body:
                    if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        found[f"{node.name}.{child.name}"] = child
    return found


def span(node) -> tuple[int, int]:
    """First and last line (1-based) of a node, decorators included."""
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return first, node.end_lineno


def enclosing_function(source: str, line_index: int) -> str:
    """The qualified name of the innermost function (or method) of ``source`` holding line
    ``line_index`` (0-based), by the syntax tree; ``"module"`` at the top level."""
    best = "module"
    for name, node in function_nodes(ast.parse(source)).items():
        first, last = span(node)
        if first - 1 <= line_index <= last - 1 and (best == "module" or name.startswith(best + ".")):
            best = name
    return best


def functions_with_regions(source: str, where: str) -> list[str]:
    """The functions of a helper file that hold a solution region, in file order."""
    lines = source.split("\n")
    return list(dict.fromkeys(enclosing_function(source, begin) for begin, _ in find_regions(lines, where)))
