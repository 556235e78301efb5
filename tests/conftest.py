"""Fixtures of the cross-cutting tests in tests/ (the shared personas are in the root conftest.py)."""

import pytest

from tests.browser import LAPTOP


@pytest.fixture
def browser_context_args(browser_context_args):
    """Browser tests open a laptop-sized page unless they open a context of their own."""
    return {**browser_context_args, "viewport": LAPTOP}
