"""Input and output: images, videos, atomic files, triplet folders."""
