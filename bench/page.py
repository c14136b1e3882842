"""The page ``make bench`` writes, ``docs/benchmarks.md``: a run's figures between two
markers, and the rest of the page — the history of earlier measurements, headed by the
decision each belongs to — kept as it is.

``bench/run.py`` calls ``splice`` with the page on disk and the page it just made; the
function is pure so a test can check it without a ten-minute run.
"""

from __future__ import annotations

BEGIN = "<!-- make bench: begin -->"
END = "<!-- make bench: end -->"


def splice(page: str | None, generated: str, begin: str = BEGIN, end: str = END) -> str:
    """``page`` with the text between its markers (``begin``, ``end``) replaced by
    ``generated``.

    Whatever stands before the begin marker and after the end marker is kept byte for
    byte. A page without either marker — none yet (``None``), or one written before the
    markers existed, which was all generated — becomes the generated part between
    markers. A page with one marker, a marker twice, or the end before the begin is
    refused rather than guessed at: a wrong guess would overwrite the history.
    """
    if begin in generated or end in generated:
        raise ValueError("the generated part must not hold the page's markers")
    block = "\n".join((begin, generated.strip("\n"), end))
    if page is None or (begin not in page and end not in page):
        return block + "\n"
    first, last = page.find(begin), page.find(end)
    if page.count(begin) != 1 or page.count(end) != 1 or last < first:
        raise ValueError(
            f"the page's markers are damaged: it needs one {begin!r} followed by one "
            f"{end!r} around the generated part"
        )
    return page[:first] + block + page[last + len(end) :]
