"""The examples of the other half of README.md and docs/*.md (tests/test_docs_examples.py runs the
first half): the same tests, in a file of their own so that a second pytest worker runs them."""

from __future__ import annotations

import pytest

from test_docs_examples import _fast_pages, _slow_pages, run_fast, run_slow


@pytest.mark.parametrize("page", _fast_pages(half=1))
def test_page_examples_run(page, tmp_path):
    run_fast(page, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("page", _slow_pages(half=1))
def test_page_slow_examples_run(page, tmp_path):
    run_slow(page, tmp_path)
