"""The examples of the other half of README.md and docs/*.md (tests/test_docs_examples.py runs the
first half): the same tests, in a file of their own so that a second pytest worker runs them."""

from test_docs_examples import page_tests

test_page_examples_run, test_page_slow_examples_run = page_tests(half=1)
