"""Infrastructure every layer uses: crash-safe JSON files (``jsonio``), cache locations
(``paths``) and content hashes (``hashing``)."""
