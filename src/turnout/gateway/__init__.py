"""The data plane: one straight line from request to provider and back."""
