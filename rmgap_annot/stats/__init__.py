"""Statistics on labels: record-clustered intervals, tests, multiplicity (and, from other modules here, truth inference and planning)."""
