"""The typed stubs list exactly the native classes' public methods, and
every public method has a docstring."""

import ast
import pathlib

import tagcache
import tagcache._tagcache as native

STUB = pathlib.Path(tagcache.__file__).with_name("_tagcache.pyi")
if not STUB.exists():  # an editable install: the stub sits in the source tree
    STUB = pathlib.Path(__file__).resolve().parents[1] / "python" / "tagcache" / "_tagcache.pyi"


CLASSES = ["Cache", "AsyncCache", "Scope", "AsyncScope", "Group", "AsyncGroup",
           "FailSafeCache", "AsyncFailSafeCache", "FailSafeScope", "AsyncFailSafeScope",
           "FailSafeGroup", "AsyncFailSafeGroup"]


def stub_classes():
    tree = ast.parse(STUB.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            out[node.name] = {n.name for n in node.body
                              if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return out


def public(cls):
    return {n for n in dir(cls) if not n.startswith("_")}


def test_stubs_match_the_native_classes():
    stubs = stub_classes()
    for name in CLASSES:
        cls = getattr(native, name)
        assert public(cls) == {n for n in stubs[name] if not n.startswith("_")}, name


def test_every_public_method_has_a_docstring():
    for name in CLASSES + ["KeyIterator", "AsyncKeyIterator"]:
        cls = getattr(native, name)
        assert cls.__doc__, name
        for attr in public(cls):
            assert getattr(cls, attr).__doc__, f"{name}.{attr}"


def test_package_is_typed():
    assert pathlib.Path(tagcache.__file__).with_name("py.typed").exists()
