"""Helpers that let tests (ours and downstream ones) run the real components: real model files,
tiny real-format weights, real servers. Never imported by the application itself."""
