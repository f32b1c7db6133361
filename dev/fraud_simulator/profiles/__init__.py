"""Distribution profiles packaged with the simulator (``fraud_simulator.profile``)."""
