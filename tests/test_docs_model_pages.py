"""The examples of the model pages (docs/models/), run as tests/test_docs_examples.py runs the rest."""

from __future__ import annotations

import pytest

from test_docs_examples import _fast_pages, _slow_pages, run_fast, run_slow


@pytest.mark.parametrize("page", _fast_pages(models=True))
def test_model_page_examples_run(page, tmp_path):
    run_fast(page, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("page", _slow_pages(models=True))
def test_model_page_slow_examples_run(page, tmp_path):
    run_slow(page, tmp_path)
