"""Input and output: images, videos, atomic files, triplet folders, numbers users type."""
