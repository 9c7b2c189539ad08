"""How a study runs: ``graph`` (params → steps), ``runner`` (one step: papermill, locks, markers),
``markers`` and ``code_versions`` (what is complete, and whether its code changed since),
``rendering`` (portable notebooks and HTML), ``executors`` (local, process pool, Dask) and
``upstream`` (the inputs of a notebook opened by hand)."""
