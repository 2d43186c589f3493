"""What the API, the CLI and the console share: each function is one use case, taking plain
values and raising the domain's errors. Most run in their own transaction; the few that take
a connection let the caller put several reads in one snapshot."""
