"""The core's own score models (the exact-score analytic check), registered as any adapter is."""
