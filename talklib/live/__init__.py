"""Live: a talking head that follows streaming audio — the causal engine (``stream``), the web server and its
page (``server``, ``page``), and the ``live`` command (``command``)."""
