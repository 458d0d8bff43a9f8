"""Card data sources: the two on-disk layouts, record validation, safe ids and the row mapping."""

from tcgjobs.sources.layouts import (
                                     SAMPLE_DIR,
                                     CardsRead,
                                     Layout,
                                     Rejection,
                                     SetsRead,
                                     Source,
                                     SourceFileError,
                                     detect,
                                     open_source,
)

__all__ = ["SAMPLE_DIR", "CardsRead", "Layout", "Rejection", "SetsRead", "Source",
           "SourceFileError", "detect", "open_source"]
