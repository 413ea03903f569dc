"""Post-processing of generated structures: relaxation, symmetry, stability, metrics."""
