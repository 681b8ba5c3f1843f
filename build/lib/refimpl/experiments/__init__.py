"""Command-line experiments that reproduce a chapter's tables at any scale
(``python -m refimpl.experiments.<name> --scale paper``)."""
