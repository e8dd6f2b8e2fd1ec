"""dedup: find the copies of the same bulletin in a crawl and the probable original source."""

import logging
import os
from pathlib import Path

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

# The data files (boilerplate patterns, known sources, credit formats) are package data in
# dedup/data/, so any install finds them (an editable one, a wheel, `pip install .`); DEDUP_DATA
# points to another folder holding boilerplate.txt and sources.toml.
DATA_DIR = Path(os.environ.get("DEDUP_DATA") or Path(__file__).resolve().parent / "data")
