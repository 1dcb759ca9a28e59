"""The metrics endpoint (`--metrics`): Prometheus and OpenMetrics exposition, headless or beside the UI."""
