"""The one error every part of the export raises: a cause the CLI and the page show as is."""

from __future__ import annotations


class ExportError(Exception):
    """The export cannot be made as asked (bad threshold, target in the way)."""
