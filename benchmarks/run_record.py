"""What every benchmark result records about its run (BENCHMARKS.md: command, machine, load, date):
``record = run_record()`` when the run starts, ``finish_record(record)`` into the results when it ends."""
import os
import platform
import sys
import time


def _utc_now():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def run_record():
    """dict: ``command`` (as typed), ``started_utc``, ``machine`` (processor, CPUs), ``omp_num_threads`` (the
    environment's ``OMP_NUM_THREADS``, None when unset) and ``load_average_start`` (1, 5, 15 min) of a benchmark
    run."""
    return dict(command=' '.join(sys.argv), started_utc=_utc_now(),
                machine=f'{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible',
                omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
                load_average_start=[round(x, 2) for x in os.getloadavg()])


def finish_record(record):
    """``record`` with ``finished_utc`` and ``load_average_end``."""
    return dict(record, finished_utc=_utc_now(), load_average_end=[round(x, 2) for x in os.getloadavg()])
