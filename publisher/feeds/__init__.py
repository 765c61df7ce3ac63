"""The feed stage: which articles go in which feed, the RSS, Atom and JSON bytes, WebSub pings."""
