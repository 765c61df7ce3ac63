"""`publisher serve`: the web service subscribers and feed readers reach."""
