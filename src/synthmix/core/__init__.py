"""The plumbing every layer uses: atomic files and hashes (``io``), the results tree's names
(``layout``), progress files (``progress``), process lifetime (``lifetime``) and provenance.

Nothing here imports another synthmix subpackage.
"""
