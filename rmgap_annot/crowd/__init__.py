"""A paid crowd study's building blocks (issue #14).

The pure part touches neither the database nor a page: the check file
reader (``checks``), the public link and what arrives through it
(``links``), the seeded check schedule and the qualification rule
(``schedule``), the quality figures a researcher watches (``quality``),
pseudonyms (``pseudonyms``) and the payment CSV (``payment``), so every rule
can be tested on plain data. On top of them, ``monitor`` reads a study's
people, labels and check answers for the Quality page and ``crowd report``,
and ``control`` makes the decisions about people (block, delete), each
written to the audit log (``rmgap_annot.audit``).
"""
