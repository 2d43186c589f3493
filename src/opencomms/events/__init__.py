"""Events: CloudEvents written to an outbox with the changes they describe, and delivered to
webhook sinks, signed, retried and guarded against server-side request forgery."""
