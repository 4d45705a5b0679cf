"""Particle statistics, carbon-binder contact/detachment, plots and reports for 3-D instance label volumes.

>>> from libnet_mmdet.analysis import particle_table, write_report
>>> from libnet_mmdet.io import read_volume
>>> labels_zyx, voxel_size_nm = read_volume('labels.tif')   # (sz, sy, sx) nm from its metadata, or None
>>> df = particle_table(labels_zyx, phases_zyx=phases_zyx, voxel_size_nm=voxel_size_nm)   # one row per particle
>>> summary = write_report(df, 'report/', labels_zyx=labels_zyx, phases_zyx=phases_zyx)

``voxel_size_nm`` is required (None raises): where the file records none, pass the scanner's, e.g. ``50``.
"""
from .particles import PHASES_GIVEN, PHASES_MODEL, PHASES_MULTI_OTSU, PHASES_NONE, particle_table
from .phases import CARBON_BINDER, NMC, PORE, check_phases, phase_fit_sample, segment_phases
from .report import summarize, write_report
from .split import split_particles, tune_watershed, watershed_segment

__all__ = [
    'particle_table', 'summarize', 'write_report', 'segment_phases', 'phase_fit_sample', 'check_phases',
    'split_particles', 'watershed_segment', 'tune_watershed', 'PORE', 'NMC', 'CARBON_BINDER', 'PHASES_GIVEN',
    'PHASES_MODEL', 'PHASES_MULTI_OTSU', 'PHASES_NONE'
]
