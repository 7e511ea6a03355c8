"""What to interpolate: whole clips, retiming, storyboards, clip reports, scene cuts."""
