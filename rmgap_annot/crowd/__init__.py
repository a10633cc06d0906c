"""A paid crowd study's building blocks (issue #14), as pure functions.

Nothing here touches the database or a page: the check file reader, the
public link and what arrives through it, the seeded check schedule and the
qualification rule, the quality figures a researcher watches, pseudonyms and
the payment CSV. The tables and pages that use them are built on top, so
every rule can be tested on plain data.
"""
