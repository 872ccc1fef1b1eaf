"""Sample data and the generator of realistic synthetic data (with ground truth)."""
