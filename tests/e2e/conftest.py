"""The browser fixtures of the dashboard tests (tests/support/browser.py)."""

from tests.support.browser import browser, page

__all__ = ["browser", "page"]
