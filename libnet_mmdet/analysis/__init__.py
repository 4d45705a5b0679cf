"""Particle statistics, carbon-binder contact/detachment, plots and reports for 3-D instance label volumes.

>>> from libnet_mmdet.analysis import particle_table, write_report
>>> df = particle_table(labels_zyx, phases_zyx=phases_zyx, voxel_size_nm=50)   # one row per particle
>>> summary = write_report(df, 'report/', labels_zyx=labels_zyx, phases_zyx=phases_zyx)
"""
from .checks import check_labels, voxel_size_zyx
from .contacts import CONTACT_CLASSES, surface_contact_counts
from .io import read_voxel_size, read_volume
from .particles import equivalent_diameter_um, particle_table
from .phases import CARBON_BINDER, NMC, PORE, check_phases, segment_phases
from .report import plot_report, summarize, summary_markdown, write_report
from .shape import principal_axes, surface_area
from .split import split_particles, watershed_segment

__all__ = [
    'particle_table', 'summarize', 'summary_markdown', 'plot_report', 'write_report', 'split_particles',
    'watershed_segment',
    'segment_phases', 'read_volume', 'read_voxel_size', 'equivalent_diameter_um', 'surface_contact_counts',
    'surface_area', 'principal_axes', 'check_labels', 'check_phases', 'voxel_size_zyx', 'CONTACT_CLASSES',
    'PORE', 'NMC', 'CARBON_BINDER',
]
