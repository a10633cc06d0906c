"""rmgap-annot: check, with real people, whether RMGAP's items mean what they claim."""

__version__ = "0.1.0"
