"""Statistics over labels: intervals, tests, truth inference, planning."""
