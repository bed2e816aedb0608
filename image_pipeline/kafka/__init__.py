"""Everything that talks to Kafka: client factories, the stage runner, reading topics, dead letters, the broker."""
