"""Usage event streams: in-process (embedded) and Redis Streams (at scale)."""
