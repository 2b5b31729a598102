"""The examples of the model pages (docs/models/), run as tests/test_docs_examples.py runs the rest."""

from test_docs_examples import page_tests

test_model_page_examples_run, test_model_page_slow_examples_run = page_tests(models=True)
