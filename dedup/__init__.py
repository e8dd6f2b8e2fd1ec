"""dedup: find the copies of the same bulletin in a crawl and the probable original source."""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
