"""What the tests share that is not a test: real servers, checkers, fixture data and helpers.

A package of its own (importable as `support`, with tests/ on pytest's
pythonpath), so that a test module's imports say which names are helpers,
and no helper is mistaken for a test module or a conftest.
"""
