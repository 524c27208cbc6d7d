"""Live session parts: devices, sinks and the threads that connect them."""
