"""The generative internals: pipeline loading, conditioning, adapters, registration."""
