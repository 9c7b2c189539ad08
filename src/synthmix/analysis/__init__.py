"""What 05_analyze computes from the results tree: ``results`` (reading it), ``stats`` and
``verdicts`` (tests, intervals, margins, power), ``claims`` (the paper's claims), ``figures``,
``diagnostics`` and ``diversity`` of the synthetic responses, and ``report`` (the index page).
Analysis reads files; it never imports ``run``."""
