"""Running unattended: one run per site (the lock), the scheduler of `publisher run`."""
