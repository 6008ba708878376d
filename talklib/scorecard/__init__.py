"""The reproduction scorecard (notebook 10): the papers' tables beside ours with a verdict per claim
(``papers``, ``card``), and the four systems side by side on one benchmark (``benchmark``)."""
