"""Dataset and model cards for everything the toolkit publishes, rendered from data and validated locally."""
