"""A tiny random Qwen-Image-Edit pipeline of the real classes, for tests and demos."""
