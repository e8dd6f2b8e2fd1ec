"""dedup: find the copies of the same bulletin in a crawl and the probable original source."""

import logging
import os
from pathlib import Path

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

# The data files (boilerplate patterns, known sources) live in data/ beside the package in a
# checkout; DEDUP_DATA points elsewhere.
DATA_DIR = Path(os.environ.get("DEDUP_DATA") or Path(__file__).resolve().parent.parent / "data")
