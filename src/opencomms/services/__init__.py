"""What the API, the CLI and the console share: each function is one use case, run in its own
transaction, taking plain values and raising the domain's errors."""
