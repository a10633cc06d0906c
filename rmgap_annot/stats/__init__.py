"""Statistics over labels and scores: intervals, tests, artifact checks."""
