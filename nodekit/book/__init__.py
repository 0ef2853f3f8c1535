"""What the chapters of the book need beyond the library: profiles, provenance, claims and
verdicts, published numbers and plotting helpers.

* :mod:`~nodekit.book.profiles` — ``quick`` / ``full`` and :func:`select`;
* :mod:`~nodekit.book.smoke` — ``NODEKIT_SMOKE=1``: every size capped, to test that a profile runs;
* :mod:`~nodekit.book.provenance` — :func:`start_chapter`, the provenance table;
* :mod:`~nodekit.book.report` — :func:`~nodekit.book.report.check`, :func:`~nodekit.book.report.compare`, tables;
* :mod:`~nodekit.book.published` — every literature number with its source;
* :mod:`~nodekit.book.plots` — running means, mean ± std, phase portraits.
"""

from . import plots, profiles, published, report
from .provenance import ChapterRun, start_chapter

__all__ = ["ChapterRun", "plots", "profiles", "published", "report", "start_chapter"]
