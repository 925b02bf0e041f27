"""Training: the train state, pure steps, and the host loop."""
