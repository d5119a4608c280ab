#!/usr/bin/python3
"""The package itself: where it is imported from, py.typed, type hints and
docstrings on the public API.  No server needed."""

import importlib.metadata
import inspect
import os
import sys
import typing
import unittest

from support import EXPECT_INSTALLED, PKG_DIR

import leadscore
import leadscore.aio
import leadscore.client
import leadscore.errors
import leadscore.pusher

PUBLIC_CLASSES = [leadscore.Client, leadscore.AsyncClient, leadscore.Pusher]
ERROR_CLASSES = [leadscore.LeadscoreError, leadscore.BadRequest, leadscore.UnknownOp,
                 leadscore.TooLarge, leadscore.Unauthorized, leadscore.Unavailable,
                 leadscore.Internal, leadscore.Timeout, leadscore.ProtocolError]
OPS = ["track", "score", "score_many", "recommend", "profile", "alias", "forget",
       "model", "reload", "kpis", "stats", "ping", "call",
       "audience_put", "audience_delete", "audience_list", "audience_members", "triggers"]
#: generators on Client, async generators on AsyncClient
ITERATORS = ["iter_audience_members", "follow_triggers"]


def public_methods(cls):
    for name, fn in inspect.getmembers(cls, inspect.isfunction):
        if not name.startswith("_") or name in ("__init__",):
            yield name, fn


class TestPackage(unittest.TestCase):

    def test_import_path(self):
        here = os.path.dirname(os.path.abspath(leadscore.__file__))
        src = os.path.join(PKG_DIR, "leadscore")
        if EXPECT_INSTALLED:
            # run_tests.sh installed it into a venv: that copy, not the tree
            self.assertNotEqual(os.path.realpath(here), os.path.realpath(src))
            self.assertTrue(os.path.realpath(here).startswith(os.path.realpath(sys.prefix)),
                            "%s is not under the venv %s" % (here, sys.prefix))
            self.assertNotEqual(sys.prefix, sys.base_prefix, "not in a venv")
            self.assertEqual(importlib.metadata.version("leadscore"), leadscore.__version__)
            files = {str(f) for f in importlib.metadata.files("leadscore")}
            for f in ("leadscore/__init__.py", "leadscore/py.typed",
                      "leadscore/aio.py", "leadscore_client.py"):
                self.assertIn(f, files)
            import leadscore_client
            self.assertIs(leadscore_client.Client, leadscore.Client)
        else:
            self.assertEqual(os.path.realpath(here), os.path.realpath(src))

    def test_py_typed(self):
        path = os.path.join(os.path.dirname(leadscore.__file__), "py.typed")
        self.assertTrue(os.path.isfile(path), path)

    def test_exports(self):
        for name in leadscore.__all__:
            self.assertTrue(hasattr(leadscore, name), name)
        self.assertRegex(leadscore.__version__, r"^\d+\.\d+\.\d+")
        for cls in (leadscore.Client, leadscore.AsyncClient):
            for op in OPS:
                self.assertTrue(callable(getattr(cls, op, None)), (cls, op))
        for op in OPS:
            self.assertTrue(inspect.iscoroutinefunction(getattr(leadscore.AsyncClient, op)), op)
            self.assertEqual(
                list(inspect.signature(getattr(leadscore.Client, op)).parameters),
                list(inspect.signature(getattr(leadscore.AsyncClient, op)).parameters), op)
        for name in ITERATORS:
            self.assertTrue(inspect.isgeneratorfunction(getattr(leadscore.Client, name)), name)
            self.assertTrue(inspect.isasyncgenfunction(getattr(leadscore.AsyncClient, name)), name)
            self.assertEqual(
                list(inspect.signature(getattr(leadscore.Client, name)).parameters),
                list(inspect.signature(getattr(leadscore.AsyncClient, name)).parameters), name)
        for op in ("audience_list", "audience_members", "triggers"):
            self.assertIn(op, leadscore.IDEMPOTENT_OPS)

    def test_type_hints(self):
        for cls in PUBLIC_CLASSES:
            for name, fn in public_methods(cls):
                hints = typing.get_type_hints(fn)    # resolves every annotation
                self.assertIn("return", hints, "%s.%s" % (cls.__name__, name))
                params = [p for p in inspect.signature(fn).parameters.values()
                          if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
                for p in params:
                    self.assertIn(p.name, hints, "%s.%s(%s)" % (cls.__name__, name, p.name))
        for fn in (leadscore.read_key_file, leadscore.error_from_reply, leadscore.error_class):
            self.assertIn("return", typing.get_type_hints(fn))

    def test_docstrings(self):
        for mod in (leadscore, leadscore.client, leadscore.aio, leadscore.pusher,
                    leadscore.errors):
            self.assertTrue(mod.__doc__, mod.__name__)
        for cls in PUBLIC_CLASSES + ERROR_CLASSES:
            self.assertTrue(cls.__doc__ and cls.__doc__.strip(), cls.__name__)
        for cls in PUBLIC_CLASSES:
            for name, fn in public_methods(cls):
                self.assertTrue(fn.__doc__ and fn.__doc__.strip(),
                                "%s.%s has no docstring" % (cls.__name__, name))
            for name in ("closed",):
                if hasattr(cls, name):
                    self.assertTrue(getattr(cls, name).__doc__)

    def test_error_hierarchy(self):
        codes = {}
        for cls in ERROR_CLASSES[1:]:
            self.assertTrue(issubclass(cls, leadscore.LeadscoreError))
            codes[cls.code] = cls
        self.assertEqual(set(codes), {"bad_request", "unknown_op", "too_large",
                                      "unauthorized", "unavailable", "internal",
                                      "timeout", "protocol"})


if __name__ == "__main__":
    unittest.main(verbosity=2)
