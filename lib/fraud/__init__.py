"""Real-time fraud detection on Spark Structured Streaming.

Modules follow the data: simulate -> ingest -> parse/quality -> features -> score ->
alerts -> sinks. Infrastructure lives beside them: config, project (paths), jars,
spark (session factory), db (PostgreSQL), stack (the local Kafka + PostgreSQL).
"""

__version__ = "0.1.0"
