"""Particle statistics, carbon-binder contact/detachment, plots and reports."""
