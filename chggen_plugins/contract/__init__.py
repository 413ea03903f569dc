"""The contract between the core and a backend: the score-model protocol, the pluggy hookspecs, the
registry of installed models, safe checkpoint loading, device names and weight provenance."""
