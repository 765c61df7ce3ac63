"""Running unattended: the site lock, the scheduler, the jobs of `publisher run`, its status.

`lock` and `scheduler` are the mechanisms; `run` holds the service's jobs and
their log lines, `status` reads what the runs left, `summary` is the one
line a build is summed up in. The command line takes the lock and the
signals and calls these; nothing here imports the command line or the web.
"""
