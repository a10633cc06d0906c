"""Statistics over labels and scores: record-clustered intervals, tests, multiplicity, truth inference, planning, artifact checks."""
