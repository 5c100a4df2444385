"""Griffe extension for the API pages: a settings field's documentation is the first argument of ``_f(doc, ...)``
(aimcbench/sim/config.py, aimcbench/config/schema.py), not a docstring, so mkdocstrings would show the fields
undocumented. This reads the doc, the default and the allowed values statically from the source, makes the doc
the field's docstring and appends an ``Attributes:`` table of all fields to the class docstring (one compact
table per settings section). It also shows Sphinx roles (:class:`x`) as code. Loaded by mkdocs.yml (plugins.mkdocstrings...extensions)."""

from __future__ import annotations

import ast
import re
from typing import Any

import griffe

# Some docstrings use Sphinx roles (:class:`~aimcbench.sim.ConfigError`); Markdown would print the role. Shown
# as code instead: a cross-reference would fail the strict build whenever its target is not on a page.
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):`~?([^`]+)`")


def _field(node: ast.AnnAssign) -> dict[str, str] | None:
    """Doc, type, default and allowed values of ``name: type = _f("doc", ...)``; None for any other statement."""
    call = node.value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "_f" and call.args):
        return None
    first = call.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return None
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    notes = []
    if isinstance(kw.get("choices"), ast.Tuple):
        notes.append("Allowed: " + ", ".join(f"`{ast.unparse(e)}`" for e in kw["choices"].elts) + ".")
    lo = ast.unparse(kw["lo"]) if "lo" in kw and ast.unparse(kw["lo"]) != "None" else None
    hi = ast.unparse(kw["hi"]) if "hi" in kw and ast.unparse(kw["hi"]) != "None" else None
    if lo or hi:
        lo_open = "lo_open" in kw and ast.unparse(kw["lo_open"]) == "True"
        notes.append(f"Range: `{'(' if lo_open else '['}{lo or '-inf'}, {hi or 'inf'}]`.")
    if "default" in kw:
        notes.append(f"Default: `{ast.unparse(kw['default'])}`.")
    elif "factory" in kw:
        fac = ast.unparse(kw["factory"])
        notes.append("Default: `[]`." if fac == "list" else "Default: `{}`." if fac == "dict" else
                     f"Default: `{fac}()`.")
    # A literal * in a doc (e.g. "variation * 2 max|W|") would start emphasis in Markdown.
    doc = first.value.replace("*", "\\*")
    doc = doc if doc.endswith(".") else doc + "."
    return {"doc": doc, "type": ast.unparse(node.annotation), "notes": " ".join(notes)}


class SchemaFieldDocs(griffe.Extension):
    """Document every ``name: type = _f("doc", ...)`` field and list them in its class's docstring."""

    def on_module_instance(self, *, node: Any, mod: griffe.Module, agent: Any, **kwargs: Any) -> None:
        # A module docstring starts at column 0, so its indented lines are code examples (RST's "::" blocks);
        # griffe's cleandoc would dedent a docstring whose only indented lines are the example into one paragraph.
        raw = ast.get_docstring(node, clean=False) if isinstance(node, ast.Module) else None
        if raw and mod.docstring:
            first, _, rest = raw.partition("\n")
            text = first.strip() + ("\n" + rest.rstrip() if rest.strip() else "")
            mod.docstring.value = re.sub(r"::$", ":", text, flags=re.MULTILINE)

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring and ":`" in obj.docstring.value:
            obj.docstring.value = _ROLE.sub(r"`\1`", obj.docstring.value)

    def on_attribute_instance(self, *, node: Any, attr: griffe.Attribute, agent: Any, **kwargs: Any) -> None:
        if not isinstance(node, ast.AnnAssign) or attr.docstring:
            return
        info = _field(node)
        if info is None:
            return
        attr.extra["aimcbench"]["field"] = info
        attr.docstring = griffe.Docstring(f"{info['doc']}\n\n{info['notes']}".strip(), parent=attr,
                                          parser=getattr(agent, "docstring_parser", None),
                                          parser_options=getattr(agent, "docstring_options", None))

    def on_class_members(self, *, node: Any, cls: griffe.Class, agent: Any, **kwargs: Any) -> None:
        rows = []
        for name, member in cls.members.items():
            info = None if member.is_alias else member.extra.get("aimcbench", {}).get("field")
            if info:
                rows.append(f"    {name} ({info['type']}): {info['doc']} {info['notes']}".rstrip())
        if not rows:
            return
        table = "Attributes:\n" + "\n".join(rows)
        if cls.docstring:  # keep the docstring's parser (mkdocstrings' docstring_style)
            cls.docstring.value = f"{cls.docstring.value.rstrip()}\n\n{table}"
        else:
            cls.docstring = griffe.Docstring(table, parent=cls, parser=getattr(agent, "docstring_parser", None),
                                             parser_options=getattr(agent, "docstring_options", None))
