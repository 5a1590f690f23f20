"""Python side of the native C++ runner (``native/``): building it, checking it against the Python
runtime, and timing it next to the Python runtime. Kept outside :mod:`sam3spec.export` so that
editing these helpers does not invalidate the export cache (which hashes that package's sources)."""
