"""mespot's method, pure computation: core/ types and rules, vision/, datasets/, synth/, learn/."""
