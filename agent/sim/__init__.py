"""Simulated machines for the demo: they speak the real protocols, so the real drivers read them."""
