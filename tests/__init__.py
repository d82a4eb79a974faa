"""The test suite, a package so tests and bench scripts import shared helpers as ``tests.support``."""
