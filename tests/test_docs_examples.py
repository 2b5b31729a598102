"""Every ```python and ```bash block of README.md and docs/**/*.md runs (see tests/docblocks.py).

One test per page runs its blocks that are neither skipped nor slow; a page with slow blocks also
gets a slow test that runs all its blocks that are not skipped, top to bottom (a slow block may use
what the blocks above it made). Where both are selected (the whole suite) only the slow one runs:
tests/conftest.py deselects the fast test of such a page, whose blocks the slow one runs too.
"""

from __future__ import annotations

import pathlib
import re
import textwrap

import pytest

import cli_zygote
import docblocks

PAGES = {str(p.relative_to(docblocks.ROOT)): p for p in docblocks.pages()}
PAGE_TIMEOUT = 900
# The model pages run from tests/test_docs_model_pages.py: pytest-xdist gives each test file to one
# worker, so the pages' minutes spread over two workers instead of one.
MODEL_PAGES = "docs/models/"


def _blocks(page):
    return docblocks.parse(PAGES[page])


def _parsed(page):
    """A page's blocks; none when it breaks the convention (the convention test names the page)."""
    try:
        return docblocks.parse(PAGES[page])
    except docblocks.PageError:
        return []


def _pages(models, half):
    """The model pages, or the others; `half` 0 or 1 takes every other one of those (the two
    halves run from two test files, so that two pytest workers share their minutes)."""
    pages = [p for p in PAGES if p.startswith(MODEL_PAGES) == models]
    return pages if half is None else pages[half::2]


def _fast_pages(models=False, half=None):
    return [p for p in _pages(models, half)
            if any(b.lang in docblocks.RUN and not b.skip and not b.slow for b in _parsed(p))]


def _slow_pages(models=False, half=None):
    return [p for p in _pages(models, half) if any(b.slow for b in _parsed(p))]


def run_fast(page, tmp_path):
    _run([b for b in _blocks(page) if b.lang in docblocks.RUN and not b.skip and not b.slow], tmp_path)


def run_slow(page, tmp_path):
    """Every block of the page that is not skipped, slow or not (tests/conftest.py leaves out the
    page's fast test where this one runs)."""
    _run([b for b in _blocks(page) if b.lang in docblocks.RUN and not b.skip], tmp_path)


def _run(blocks, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    code, output = docblocks.run_page(blocks, work, tmp_path / "env", PAGE_TIMEOUT)
    assert code == 0, output[-6000:]


def test_every_page_follows_the_convention():
    """A marker without a reason, a stray marker, an unknown fence language: named, page and line."""
    problems = []
    for page in PAGES:
        try:
            docblocks.parse(PAGES[page])
        except docblocks.PageError as e:
            problems.append(str(e))
    assert not problems, "\n".join(problems)


def page_tests(models=False, half=None):
    """The two tests of a set of pages (see `_pages`): each page's blocks less the slow ones, and,
    marked slow, all of them; a test file binds them to its own test names."""
    @pytest.mark.parametrize("page", _fast_pages(models, half))
    def fast(page, tmp_path):
        run_fast(page, tmp_path)

    @pytest.mark.slow
    @pytest.mark.parametrize("page", _slow_pages(models, half))
    def slow(page, tmp_path):
        run_slow(page, tmp_path)

    return fast, slow


# The other half of the pages: tests/test_docs_examples_b.py; the model pages: test_docs_model_pages.py.
test_page_examples_run, test_page_slow_examples_run = page_tests(half=0)


def _page(tmp_path, text):
    path = tmp_path / "page.md"
    path.write_text(textwrap.dedent(text))
    orig = docblocks.ROOT
    docblocks.ROOT = tmp_path
    try:
        return docblocks.parse(path)
    finally:
        docblocks.ROOT = orig


def test_the_collector_reads_markers_and_refuses_what_breaks_the_convention(tmp_path):
    blocks = _page(tmp_path, """\
        <!-- docs: skip (needs ../shared/data) -->
        ```bash
        ls /nowhere
        ```
        <!-- docs: slow -->
        ```python
        x = 1
        ```
        ```text
        output
        ```
        """)
    assert [(b.lang, b.skip, b.slow, b.line) for b in blocks] == [
        ("bash", "needs ../shared/data", False, 3), ("python", None, True, 7), ("text", None, False, 10)]
    for bad, message in [("<!-- docs: skip -->\n```bash\nls\n```\n", "reason is required"),
                         ("<!-- docs: skip () -->\n```bash\nls\n```\n", "reason is required"),
                         ("<!-- docs: slwo -->\n```bash\nls\n```\n", "reason is required"),
                         ("<!-- docs: slow -->\n\n```bash\nls\n```\n", "line just above"),
                         ("```sh\nls\n```\n", "fence language 'sh'"),
                         ("```\nls\n```\n", "fence language '(none)'"),
                         ("<!-- docs: slow -->\n```text\nout\n```\n", "never runs"),
                         ("```python\nx = 1\n", "never closed")]:
        with pytest.raises(docblocks.PageError, match=re.escape(message)):
            _page(tmp_path, bad)


def test_a_page_runs_in_one_directory_and_one_interpreter_and_stops_at_a_failure(tmp_path):
    blocks = _page(tmp_path, """\
        ```python
        import os
        value = 41
        open("made.txt", "w").write("from python")
        ```
        ```bash
        test "$(cat made.txt)" = "from python" && keras-zoo --help > help.txt
        ```
        ```python
        assert value + 1 == 42 and "train" in open("help.txt").read()
        raise SystemExit(3) if os.path.exists("made.txt") else None
        ```
        ```bash
        touch never.txt
        ```
        """)
    work = tmp_path / "work"
    work.mkdir()
    code, output = docblocks.run_page(blocks, work, tmp_path / "env", 300)
    assert code == 1 and "FAILED: the python block at page.md:10" in output, output
    assert (work / "help.txt").exists() and not (work / "never.txt").exists()


def test_a_pages_keras_zoo_commands_keep_their_directory_streams_and_exit_status(tmp_path):
    """The page's `keras-zoo` commands that import TensorFlow run through the page's command server
    (tests/cli_zygote.py): each in the shell's working directory, with its redirections and pipes, and
    the exit status of the command; two at once do not wait for each other."""
    blocks = _page(tmp_path, """\
        ```bash
        mkdir sub && cd sub
        keras-zoo train no_such_model --data digits 2> err.txt || echo "$?" > status.txt
        keras-zoo train mlp_lecture --data moons --epochs 1 --no-export --out run | grep -c accuracy > lines.txt
        (keras-zoo scan nowhere 2> a.txt || true) & (keras-zoo scan elsewhere 2> b.txt || true); wait
        ```
        ```python
        import os
        assert open("sub/status.txt").read().split() == ["2"]
        assert "no_such_model" in open("sub/err.txt").read()
        assert int(open("sub/lines.txt").read()) >= 1 and os.path.exists("sub/run/metrics.json")
        assert "'nowhere'" in open("sub/a.txt").read() and "'elsewhere'" in open("sub/b.txt").read()
        ```
        """)
    assert cli_zygote.needs_server(blocks[0].code)
    work = tmp_path / "work"
    work.mkdir()
    code, output = docblocks.run_page(blocks, work, tmp_path / "env", 300)
    assert code == 0, output


def test_the_command_server_knows_which_commands_import_tensorflow():
    from keras_zoo import cli

    assert {f.__name__ for f in cli._WITHOUT_TENSORFLOW} == {f"cmd_{c}" for c in cli_zygote.WITHOUT_TENSORFLOW}
    assert not cli_zygote.needs_server("keras-zoo list --pretrained | grep imagenet\nkeras-zoo info cnn_small")
    assert not cli_zygote.needs_server("keras-zoo train --help")
    assert cli_zygote.needs_server("keras-zoo list && KERAS_ZOO_IMAGENET=random keras-zoo finetune m --data d")
