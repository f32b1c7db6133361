"""Distribution profiles packaged with the simulator (``fraud.simulate.profile``)."""
