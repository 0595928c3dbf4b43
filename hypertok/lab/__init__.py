"""The comparison lab (issue 3): metrics, ``hypertok compare`` and its reports.

``metrics`` (pure functions over ids and byte spans), ``compare`` (the command: load the
tokenizers from :mod:`hypertok.registry`, measure, write), ``report`` (Markdown, CSV and
plots). Nothing here is imported by ``import hypertok``.
"""
