"""The app's serving layer (no gradio): tabs' actions, config, jobs, concurrency."""
