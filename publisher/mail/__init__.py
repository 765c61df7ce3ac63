"""The mail stage: digests chosen and rendered, messages composed, subscribers and sign-ups."""
