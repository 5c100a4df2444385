"""Griffe extension for the API pages: a settings field's documentation is the first argument of ``_f(doc, ...)``
(aimcbench/sim/config.py, aimcbench/config/schema.py), not a docstring, so mkdocstrings would show the fields
undocumented. This reads that string (and the ``choices``, when they are a literal tuple) statically from the
source and makes it the field's docstring. Loaded by mkdocs.yml (plugins.mkdocstrings...extensions)."""

from __future__ import annotations

import ast
from typing import Any

import griffe


class SchemaFieldDocs(griffe.Extension):
    """Give every ``name: type = _f("doc", ...)`` class attribute the docstring ``doc``."""

    def on_attribute_instance(self, *, node: Any, attr: griffe.Attribute, agent: Any, **kwargs: Any) -> None:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.value, ast.Call):
            return
        call = node.value
        if not (isinstance(call.func, ast.Name) and call.func.id == "_f") or not call.args:
            return
        first = call.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)) or attr.docstring:
            return
        text = first.value
        for kw in call.keywords:
            if kw.arg == "choices" and isinstance(kw.value, ast.Tuple):
                values = [e.value for e in kw.value.elts if isinstance(e, ast.Constant)]
                text += "\n\nAllowed: " + ", ".join(f"`{v}`" for v in values) + "."
        attr.docstring = griffe.Docstring(text, parent=attr)
