"""Statistics over labels and scores: intervals, tests, truth inference, planning, artifact checks."""
