"""The static site beside the feeds: a page per article, tag, year and digest.

`plan` decides which pages exist and what goes into each (from the store's
columns alone), `render` turns one page into bytes with the Jinja2 templates
of templates/pages/, and `write` renders and writes only the pages whose
inputs changed, removing those no longer made. `links` checks that every
link publisher makes inside base_url resolves to a built file.
"""
