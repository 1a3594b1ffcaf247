"""Long work, kept out of the interactive lane.

``lane.Lane`` runs jobs (an evaluation over a data set, anything that scales with what a user
uploads) as child processes with memory, CPU-time and wall limits, at a lower CPU priority, at
most one job per session and a bounded number in all, in arrival order, with a queue position
and a cancel that ends the process. ``child`` is the protocol a job's process speaks (progress
lines and one final line on stdout). The lane knows nothing of what a job computes. ``selftest``
is a job that exercises the limits (the lane's tests and the soak run it).
"""


class JobError(Exception):
    """Raised by a job with a message for the user (no server paths, no library text)."""
