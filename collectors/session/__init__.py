"""What netscope makes of the data, without drawing it: the filter language, alerts, insights, history, rates,
settings and the notices policy. Textual-free (import-linter checks it), so each is tested without a screen."""
