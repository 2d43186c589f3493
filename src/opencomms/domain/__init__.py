"""Business rules: commands, statuses, routing and stats. No I/O here."""
