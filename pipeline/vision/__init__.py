"""From frames to features: frame sources, face and regions, optical flow, HOOF, feature config."""
