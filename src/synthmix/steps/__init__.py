"""What each notebook computes: ``generate`` (01, with ``parsing`` of replies), ``filtering`` (02),
``train`` (03, on the loop in ``training``), ``distill`` (04), and the ``models``, ``devices`` and
``metrics`` they share. Steps use ``data`` and ``llm``; they never import ``analysis`` or ``run``."""
