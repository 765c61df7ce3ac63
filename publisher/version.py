"""The versions: one place, below everything, so any layer may name them."""

__version__ = "0.1.0"

# The rules that turn an article's body into HTML (content.markup: the sanitising
# rules, the Markdown options). Bump when a change there changes the HTML of an
# unchanged article: HTML cached by a build under other rules is then rendered
# again, and every feed and page holding it rewritten. Kept here, not in markup,
# so that a build with nothing to do reads it without importing the renderers.
RENDER_RULES = "3"
