"""The book's committed data, installed as the package ``refimpl.bookdata``.

``<topic>/`` holds book-scale weights (chapters 4 and 5) and ``<topic>/full/`` the
committed results of a ``full``-scale run (``results.csv`` and a ``README.md``
with the command, wall time, machine, torch version and date). Read them with
:mod:`refimpl.results`; nothing here is written at run time.
"""
