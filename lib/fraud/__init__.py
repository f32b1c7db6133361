"""Real-time fraud detection on Spark Structured Streaming.

The job's package; docs/architecture.md walks a record through its modules in data order (the
stream, the pipeline's chain, one micro-batch, the lake writer). The simulator and the local
stack are not here: they are the fraud-devtools distribution in dev/.
"""

__version__ = "0.1.0"
