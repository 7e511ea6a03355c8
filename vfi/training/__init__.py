"""Training adapters: data, the loop's pieces, checkpoints, the model card."""
