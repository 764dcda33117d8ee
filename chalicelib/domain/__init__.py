"""tracekit's domain: pure rules, no I/O."""
