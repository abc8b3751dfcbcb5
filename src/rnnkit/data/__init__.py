"""rnnkit.data."""
