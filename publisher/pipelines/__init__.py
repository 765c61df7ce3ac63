"""The two pipelines, the one place each knows the order of its stages.

`build`: content → feeds (and what the build writes). `digests`: content →
mail → delivery (a digest chosen, frozen, rendered and sent).
"""
