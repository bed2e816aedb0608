"""Alert delivery: who gets which alert on which channel (pure planning) and the worker that sends it."""
