"""Events: the outbox, NATS JetStream, webhooks and commands over NATS."""
