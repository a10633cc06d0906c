"""The human-verified subset: the rule, the files, the dataset card, the report.

One concern per module:

- :mod:`.rule`: which items are verified (thresholds, reasons) and which
  entries that keeps (all their items verified);
- :mod:`.sources`: what the export reads from the database;
- :mod:`.files`: the export folder, written atomically, its manifest and the
  ``--force`` rules (:func:`write_export` puts the parts together);
- :mod:`.card`: the dataset card (README.md);
- :mod:`.html_report`: report.html.

The names below are the package's public surface (the CLI, the pages,
hf_dataset, bench/ and tests import them from ``rmgap_annot.export``).
"""

from rmgap_annot.export.card import (
    alpha_lines,
    card_extras,
    card_planning,
    card_referee,
    dataset_card,
    verdict_block,
)
from rmgap_annot.export.errors import ExportError
from rmgap_annot.export.files import (
    EXPORT_FILES,
    LEVELS,
    MANIFEST,
    ExportResult,
    foreign_files,
    write_export,
    write_items,
    write_labels,
)
from rmgap_annot.export.html_report import svg_intervals, svg_stacked_bars, write_report_html
from rmgap_annot.export.rule import (
    REASON_DISAGREE,
    REASON_FEW,
    REASON_RATING,
    REASON_UNNATURAL,
    REASON_WRONG,
    REASONS,
    STAT_COLUMNS,
    Rule,
    apply_rule,
    as_fraction,
    entries_kept,
    format_fraction,
    item_stats,
    record_verdicts,
    summarize,
    verify,
)
from rmgap_annot.export.sources import (
    ANALYTICS_MISSING,
    _benchmark,
    _item_rows,
    labels_version,
    load_analytics,
)

__all__ = [
    "ANALYTICS_MISSING", "EXPORT_FILES", "LEVELS", "MANIFEST", "REASONS", "REASON_DISAGREE", "REASON_FEW",
    "REASON_RATING", "REASON_UNNATURAL", "REASON_WRONG", "STAT_COLUMNS", "ExportError", "ExportResult", "Rule", "_benchmark",
    "_item_rows", "alpha_lines", "apply_rule", "as_fraction", "card_extras", "card_planning", "card_referee",
    "dataset_card", "entries_kept", "foreign_files", "format_fraction", "item_stats", "labels_version",
    "load_analytics", "record_verdicts", "summarize", "svg_intervals", "svg_stacked_bars", "verdict_block",
    "verify", "write_export", "write_items", "write_labels", "write_report_html",
]
