"""rnnkit.metrics."""
