"""The embedded database's write machinery: SQLite allows one writer and its driver runs in threads,
so writes go through one thread hop per transaction (``one_hop``), wait their turn at a process-wide
gate (``gate``), run on threads that yield the CPU to the event loop (``polite``), and the WAL is
checkpointed in the background (``checkpoint``). On PostgreSQL each of these steps aside."""
