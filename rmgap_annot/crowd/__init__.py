"""A paid crowd study (issue #14).

The pure part touches neither the database nor a page: the check file
reader (``checks``), the public link and what arrives through it
(``links``), the seeded check schedule and the qualification rule
(``schedule``), the quality figures a researcher watches (``quality``) and
the payment CSV (``payment``), so every rule can be tested on plain data
(pseudonyms are stored numbers: ``rmgap_annot.studies``). On top of them: a participant's arrival
(``arrival``), their stream of consent, qualification, checks and items
(``stream``, ``checks_store``), the researcher's preview (``preview``); and
for the researcher watching, ``monitor`` (the Quality page's and ``crowd
report``'s figures) and ``control`` (block, delete), each decision written to
the audit log (``rmgap_annot.audit``).
"""
