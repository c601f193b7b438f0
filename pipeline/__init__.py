"""mespot science: frames, faces, flow, HOOF, windows, datasets, synthetic corpus."""
