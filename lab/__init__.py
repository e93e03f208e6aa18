"""The laboratory: scenarios run for real (Python, Go) and held against the model."""
