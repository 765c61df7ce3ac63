"""`publisher serve`: the web service subscribers and feed readers reach.

create_app(site) builds the Starlette application; run_server(site, host=,
port=) serves it with uvicorn until SIGTERM or SIGINT. Inside: app (putting
the parts together), paths (where each page lives), handlers (the
endpoints), pages (templates and messages), forms (strict form reading),
confirmation (the sign-up's message), files (the output folder) and
middleware (body limit, access log, sign-up limiter).
"""

from publisher.web.app import create_app, run_server

__all__ = ["create_app", "run_server"]
