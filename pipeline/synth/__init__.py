"""The synthetic corpus of ``mespot synth``: real faces animated with known movements."""
