"""Every error creditmodel raises at a boundary is a text of the message catalogue, so a person reads it in
Simplified Chinese as well as English: no boundary error is built from an English string, and every text id
an error names is in both catalogues with the fields the raise fills in."""

import ast
from pathlib import Path

import pytest

import creditmodel
from creditmodel.texts import LANGS, catalogue, fields_of

SRC = Path(creditmodel.__file__).parent
# modules whose boundary errors stay English, and why
ENGLISH_ONLY = {
    "texts/__init__.py": "the catalogue's own failures (an unknown language or id) cannot be said from it",
}


def _modules() -> dict[str, ast.Module]:
    return {str(p.relative_to(SRC)): ast.parse(p.read_text(encoding="utf-8")) for p in sorted(SRC.rglob("*.py"))}


def _boundary_errors(trees: dict[str, ast.Module]) -> set[str]:
    """CreditModelError and the names of every class of the package that derives from it."""
    names, grown = {"CreditModelError"}, True
    while grown:
        grown = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in names and any(
                        isinstance(b, ast.Name) and b.id in names for b in node.bases):
                    names.add(node.name)
                    grown = True
    return names


TREES = _modules()
ERRORS = _boundary_errors(TREES)


def test_the_boundary_errors_are_found():
    assert {"DataContractError", "ConfigError", "BundleError", "RequestError", "StoreError", "RegistryError",
            "ModelInputError"} <= ERRORS


def test_no_boundary_error_is_built_from_an_english_string():
    built = [f"{path}:{node.lineno} {node.func.id}(...)"
             for path, tree in TREES.items() if path not in ENGLISH_ONLY
             for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ERRORS]
    assert not built, f"{len(built)} boundary errors built from a string, not with .of(text_id, ...): {built}"


def _of_calls():
    for path, tree in TREES.items():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "of"
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                yield path, node


OF_CALLS = list(_of_calls())


def test_errors_name_texts():
    assert len(OF_CALLS) > 300  # every boundary error of the kit, not a handful


@pytest.mark.parametrize("lang", LANGS)
def test_every_error_text_is_in_the_catalogue_with_the_fields_its_raise_fills(lang):
    texts = catalogue(lang)
    wrong = []
    for path, node in OF_CALLS:
        id_ = node.args[0].value
        if id_ not in texts:
            wrong.append(f"{path}:{node.lineno} {id_!r} is not in the {lang} catalogue")
            continue
        if any(k.arg is None for k in node.keywords):  # **fields: checked when raised, not here
            continue
        given = {k.arg for k in node.keywords}
        needed = fields_of(texts[id_]) - {"unit"}
        if needed - given or given - needed - {"currency"}:
            wrong.append(f"{path}:{node.lineno} {id_!r}: the raise fills {sorted(given)}, the {lang} text "
                         f"needs {sorted(needed)}")
    assert not wrong, "\n".join(wrong)
