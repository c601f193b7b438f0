"""Learning from window features: feature layout, LSTM, baseline, feedback-simulation rules."""
