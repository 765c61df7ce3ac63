"""The content stage: article files found, read and parsed, and indexed into the store.

`frontmatter` reads the YAML block, `markup` turns bodies into clean HTML,
`articles` finds and validates files, `indexing` brings the store in line
with the folder and gives every article its id for life.
"""
