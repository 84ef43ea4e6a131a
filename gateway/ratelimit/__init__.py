"""Rate and concurrency limits: the limiter (in memory or Redis), the guard at the edges
of every connection, and login throttling."""
