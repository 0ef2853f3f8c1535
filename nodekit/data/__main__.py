"""``python -m nodekit.data download NAME``: see :mod:`nodekit.data.downloader`."""

import sys

from .downloader import main

sys.exit(main())
