"""Synthetic NMC nano-CT volumes with exact 3D ground truth."""
