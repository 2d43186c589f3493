"""What the API, the console and the CLI do, once: each function takes a connection (the
caller owns the transaction) and returns records or raises the domain's errors."""
